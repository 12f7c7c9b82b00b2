"""Run llama-cpp-python's OpenAI-compatible server with the AMX-safe model settings.

python tests/llama_server.py --model FILE --host 127.0.0.1 --port PORT ...
"""

import runpy
import sys

from simrun.plugins.simulators.embedded import without_weight_repacking

if __name__ == "__main__":
    sys.argv[0] = "llama_cpp.server"
    with without_weight_repacking():
        runpy.run_module("llama_cpp.server", run_name="__main__")
