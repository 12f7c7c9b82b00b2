"""Built-in simrun components, registered through the simrun entry-point group."""
