"""Built-in executors: where the simulator's calls run."""
