"""``litellm``: API models and any OpenAI-compatible server, through litellm.

Every provider litellm supports (``openai/gpt-4o-mini``, ``anthropic/...``,
``hosted_vllm/...``) and any OpenAI-compatible server via ``base_url``. The
API key is read from the environment variable the scenario names; it is never
stored in the run log. Requests run concurrently up to a limit, under an
optional requests- and tokens-per-minute budget, and are retried with
exponential backoff on timeouts, 429s, 5xx answers and malformed replies.

``mode: logprobs`` reads the answer distribution from the first token's top
log-probabilities; ``mode: samples`` asks ``samples`` times and counts (for
providers without log-probabilities; ``samples: 1, temperature: 0.95`` is the
seed paper's setting).

``generate`` with a JSON Schema asks for structured output and checks every
reply against the whole schema, asking again (up to ``max_retries``) when it
breaks it. What is enforced while decoding is the server's: OpenAI and vLLM
(``structured_output: json_schema``) enforce enums, string lengths, array
sizes and numeric bounds; llama-cpp-python's server (``json_object``)
ignores numeric bounds, so there each integer bounded on both sides with at
most 256 values is sent as the equivalent enum. Left to the check after
decoding: what the server's grammar cannot express (for llama-cpp-python's
server: one-sided or wider integer bounds, bounds on numbers, ``multipleOf``,
``uniqueItems``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from functools import cached_property
from typing import Any, Literal

from pydantic import Field

from simrun import (
    COST_COUNTER,
    Estimate,
    ModelAnswer,
    Prompt,
    Simulator,
    StrictConfig,
    bounded_integers_as_enums,
    failed_answer,
    from_logprobs,
    from_samples,
    hookimpl,
    secret,
)


class MalformedReply(Exception):
    """The server answered 200 but not with what was asked for."""


class RateLimiter:
    """Token buckets for requests and tokens per minute; both must allow a request."""

    def __init__(self, rpm: int | None, tpm: int | None, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.buckets = {
            name: [float(limit), float(limit), limit / 60.0]
            for name, limit in (("requests", rpm), ("tokens", tpm))
            if limit
        }
        self.updated = clock()

    def delay(self, tokens: int) -> float:
        """Seconds to wait before a request of ``tokens`` fits; 0 when it fits now (and it is taken)."""
        now = self.clock()
        elapsed, self.updated = now - self.updated, now
        needs = {"requests": 1.0, "tokens": float(tokens)}
        wait = 0.0
        for name, bucket in self.buckets.items():
            level, capacity, rate = bucket
            bucket[0] = min(capacity, level + elapsed * rate)
            need = min(needs[name], capacity)
            if bucket[0] < need:
                wait = max(wait, (need - bucket[0]) / rate)
        if wait == 0.0:
            for name, bucket in self.buckets.items():
                bucket[0] -= min(needs[name], bucket[1])
        return wait

    async def acquire(self, tokens: int) -> None:
        while (wait := self.delay(tokens)) > 0:
            await asyncio.sleep(wait)


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def top_logprobs(response: Any) -> dict[str, float]:
    """``{token: logprob}`` for the first generated token, from an OpenAI-shaped reply."""
    try:
        logprobs = _field(response.choices[0], "logprobs")
        first = _field(logprobs, "content")[0]
        return {_field(t, "token"): float(_field(t, "logprob")) for t in _field(first, "top_logprobs")}
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise MalformedReply(f"no top log-probabilities in the reply ({type(exc).__name__})") from None


def message_text(response: Any) -> str:
    try:
        content = _field(_field(response.choices[0], "message"), "content")
    except (AttributeError, IndexError, TypeError) as exc:
        raise MalformedReply(f"no message in the reply ({type(exc).__name__})") from None
    if not isinstance(content, str):
        raise MalformedReply("the reply's message has no text")
    return content


class LiteLLMSimulator(Simulator):
    """Any litellm provider or OpenAI-compatible server: logprobs or k samples, with retries and rate limits."""

    name = "litellm"
    chunk_size = 64
    non_semantic = frozenset(
        {
            "api_key_env",
            "max_concurrency",
            "max_retries",
            "backoff_s",
            "max_backoff_s",
            "timeout_s",
            "requests_per_minute",
            "tokens_per_minute",
            "input_cost_per_token",
            "output_cost_per_token",
        }
    )

    class Config(StrictConfig):
        model: str = Field(
            description="litellm model name, e.g. openai/gpt-4o-mini or hosted_vllm/meta-llama/Llama-3.1-8B-Instruct."
        )
        base_url: str | None = Field(None, description="An OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1.")
        api_key_env: str | None = Field(
            None, description="Name of the environment variable holding the API key (the key itself is never stored)."
        )
        mode: Literal["logprobs", "samples"] = "logprobs"
        top_logprobs: int = Field(20, ge=1, le=20)
        samples: int = Field(10, ge=1, description="Answers sampled per prompt in samples mode.")
        temperature: float = Field(
            1.0, ge=0, description="Sampling temperature in samples mode (logprobs mode uses 0)."
        )
        max_concurrency: int = Field(8, ge=1)
        max_retries: int = Field(5, ge=0)
        backoff_s: float = Field(1.0, gt=0, description="First retry delay; doubles each retry (with jitter).")
        max_backoff_s: float = Field(60.0, gt=0)
        timeout_s: float = Field(60.0, gt=0)
        requests_per_minute: int | None = Field(None, ge=1)
        tokens_per_minute: int | None = Field(None, ge=1)
        structured_output: Literal["json_schema", "json_object", "none"] = Field(
            "json_schema",
            description="How generate() asks for JSON: OpenAI's json_schema (OpenAI, vLLM), json_object with a "
            "schema (llama-cpp-python's server; bounded integers sent as enums), or none (validate and retry only).",
        )
        extra: dict[str, Any] = Field(default_factory=dict, description="Passed to litellm.acompletion as is.")
        input_cost_per_token: float | None = Field(
            None, ge=0, description="USD per prompt token; default: litellm's price list (shipped, read offline)."
        )
        output_cost_per_token: float | None = Field(None, ge=0, description="USD per completion token; as above.")

    def __init__(self, config=None):
        super().__init__(config)
        # litellm also reads provider keys (OPENAI_API_KEY, ...) by itself: mask them all, not only api_key_env's
        for name, value in os.environ.items():
            if name.endswith(("_API_KEY", "_API_TOKEN", "_SECRET_KEY")):
                secret(value)
        self.counts: Counter[str] = Counter()
        self.limiter = RateLimiter(self.config.requests_per_minute, self.config.tokens_per_minute)

    @property
    def model(self) -> str:
        return self.config.model

    @cached_property
    def litellm(self):
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else it fetches a price list from the web
        import litellm

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        return litellm

    @cached_property
    def retryable(self) -> tuple[type[BaseException], ...]:
        e = self.litellm.exceptions
        return (
            e.RateLimitError,
            e.Timeout,
            e.APIConnectionError,
            e.InternalServerError,
            e.ServiceUnavailableError,
            e.BadGatewayError,
            e.APIResponseValidationError,
            e.APIError,
            MalformedReply,
            json.JSONDecodeError,
        )

    def api_key(self) -> str | None:
        name = self.config.api_key_env
        if name is None:
            return None
        key = os.environ.get(name)
        if not key:
            raise RuntimeError(f"litellm simulator: the environment variable {name} (api_key_env) is not set")
        return secret(key)

    async def call(self, messages: list[dict[str, str]], read: Callable[[Any], Any], **params: Any) -> Any:
        """One request with rate limiting and retries; returns ``read(response)``."""
        c = self.config
        tokens = sum(len(m["content"]) for m in messages) // 4 + params.get("max_tokens", 1)
        for attempt in range(c.max_retries + 1):
            await self.limiter.acquire(tokens)
            try:
                response = await self.litellm.acompletion(
                    model=c.model,
                    messages=messages,
                    api_base=c.base_url,
                    api_key=self.api_key(),
                    timeout=c.timeout_s,
                    num_retries=0,
                    drop_params=True,
                    **params,
                    **c.extra,
                )
                self.counts["requests"] += 1
                self.book(response)
                return read(response)
            except self.retryable as exc:
                kind = type(exc).__name__
                self.counts[f"fault:{kind}"] += 1
                if attempt == c.max_retries:
                    raise
                self.counts["retries"] += 1
                delay = min(c.max_backoff_s, c.backoff_s * 2**attempt)
                await asyncio.sleep(delay / 2 + random.uniform(0, delay / 2))

    async def answer_one(self, prompt: Prompt, gate: asyncio.Semaphore) -> ModelAnswer:
        c = self.config
        messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]
        started = time.perf_counter()
        async with gate:
            try:
                if c.mode == "logprobs":
                    logprobs, text = await self.call(
                        messages,
                        lambda r: (top_logprobs(r), message_text(r)),
                        max_tokens=1,
                        temperature=0,
                        logprobs=True,
                        top_logprobs=c.top_logprobs,
                    )
                    answer = from_logprobs(logprobs, prompt.labels, raw=text)
                else:
                    texts = await asyncio.gather(
                        *(
                            self.call(
                                messages,
                                message_text,
                                max_tokens=8,
                                temperature=c.temperature,
                                seed=prompt.repeat * c.samples + i,
                            )
                            for i in range(c.samples)
                        )
                    )
                    answer = from_samples(list(texts), prompt.labels)
            except self.retryable as exc:
                self.counts["failed"] += 1
                return failed_answer(prompt.labels, f"{type(exc).__name__} after {c.max_retries} retries: {exc}")
            except self.litellm.exceptions.BadRequestError as exc:  # this prompt only: policy, context window
                self.counts["rejected"] += 1
                return failed_answer(prompt.labels, f"{type(exc).__name__}: {exc}")
        answer.latency_ms = (time.perf_counter() - started) * 1000
        return answer

    def answer(self, prompts: list[Prompt]) -> list[ModelAnswer]:
        async def run() -> list[ModelAnswer]:
            gate = asyncio.Semaphore(self.config.max_concurrency)
            return await asyncio.gather(*(self.answer_one(p, gate) for p in prompts))

        return asyncio.run(run())

    def generate(
        self,
        prompts: list[str],
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
    ) -> list[str]:
        """Text per prompt; with ``json_schema``, structured output where the provider has it,
        and the reply validated against the schema, asked again up to ``max_retries`` times."""
        import jsonschema

        params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        structured = self.config.structured_output if json_schema is not None else "none"
        if structured == "json_schema":
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": json_schema},
            }
        elif structured == "json_object":
            params["response_format"] = {"type": "json_object", "schema": bounded_integers_as_enums(json_schema)}

        def read(response: Any) -> str:
            text = message_text(response)
            if json_schema is not None:
                try:
                    jsonschema.validate(json.loads(text), json_schema)
                except (json.JSONDecodeError, jsonschema.ValidationError) as exc:
                    raise MalformedReply(f"reply does not match the JSON schema: {str(exc)[:200]}") from None
            return text

        async def one(prompt: str, gate: asyncio.Semaphore) -> str:
            async with gate:
                try:
                    return await self.call([{"role": "user", "content": prompt}], read, **params)
                except self.retryable:
                    self.counts["failed"] += 1
                    return ""

        async def run() -> list[str]:
            gate = asyncio.Semaphore(self.config.max_concurrency)
            return await asyncio.gather(*(one(p, gate) for p in prompts))

        return asyncio.run(run())

    def stats(self) -> dict[str, int]:
        return dict(self.counts)

    def price(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for a call of these sizes: the config's prices, else litellm's list; None when neither knows."""
        return priced(self.config, self.litellm, prompt_tokens, completion_tokens)[0]

    def book(self, response: Any) -> None:
        """The cost ledger: tokens the provider counted, and their price, added to the run's counters."""
        usage = _field(response, "usage")
        tokens = [int(_field(usage, name) or 0) if usage else 0 for name in ("prompt_tokens", "completion_tokens")]
        self.counts["prompt_tokens"] += tokens[0]
        self.counts["completion_tokens"] += tokens[1]
        cost = self.price(*tokens)
        if cost is None:
            self.counts["calls_unpriced"] += 1
        else:
            self.counts[COST_COUNTER] += round(cost * 1_000_000)

    def estimate(self, prompts: list[Prompt]) -> Estimate:
        calls = len(prompts) * (self.config.samples if self.config.mode == "samples" else 1)
        completion = calls * (8 if self.config.mode == "samples" else 1)
        prompt_tokens = super().estimate(prompts).prompt_tokens * (calls // max(len(prompts), 1))
        cost, note = priced(self.config, self.litellm, prompt_tokens, completion)
        return Estimate(
            calls=calls, prompt_tokens=prompt_tokens, completion_tokens=completion, cost_usd=cost, price_note=note
        )


def priced(c: Any, litellm: Any, prompt_tokens: int, completion_tokens: int) -> tuple[float | None, str]:
    """USD for a call of these sizes under config ``c`` (its prices, else litellm's list; None when neither
    knows), and where it comes from or why there is none: --estimate says which."""
    if c.input_cost_per_token is not None or c.output_cost_per_token is not None:
        unset = [f for f in ("input_cost_per_token", "output_cost_per_token") if getattr(c, f) is None]
        usd = prompt_tokens * (c.input_cost_per_token or 0) + completion_tokens * (c.output_cost_per_token or 0)
        return usd, "your prices in simulator.with" + (f"; {unset[0]} is not set, counted as 0" if unset else "")
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=c.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:  # noqa: BLE001 - litellm raises its own (and plain) errors for a model it has no price for
        return None, (
            f"'{c.model}' is not in litellm's price list, and simulator.with sets no input_cost_per_token / "
            "output_cost_per_token (USD per token) of your own"
        )
    return prompt_cost + completion_cost, "litellm's price list"


@hookimpl
def register_simulators(register):
    register(LiteLLMSimulator)
