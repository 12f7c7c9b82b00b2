"""Asking the simulator through the cache and the executor: the one place a model call is made.

Each distinct request is asked once: what the cache holds is read from it (or from the replies a run keeps at
hand), the rest goes to the executor in chunks, and each chunk's replies are cached the moment they arrive.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from ..components import Executor
from ..models import ModelAnswer, Prompt
from ..schemas import schema_check
from ..store import PromptKeys, Store, cache_key_of, dumps, pack_answer, unpack_answer

RECENT_REPLIES = 10_000  # cached replies a run keeps at hand (about 1.4 KB each: 14 MB at most)


class ModelCalls:
    """Model calls through the cache of ``store`` (``use_cache=False``: every call is sent, and cached)."""

    def __init__(self, store: Store, use_cache: bool = True):
        self.store = store
        self.use_cache = use_cache
        self.recent: dict[bytes, Any] = {}  # cache key -> a reply the cache holds, the latest (``remember``)

    def through_cache(
        self,
        keys: list[bytes],
        request: Callable[[int], Any],
        executor: Executor,
        method: Literal["answer", "generate"],
        options: dict[str, Any],
        encode: Callable[[Any], str | bytes],
        decode: Callable[[str | bytes], Any],
        keep: Callable[[Any], bool],
        legacy: Callable[[int], bytes] | None = None,
    ) -> tuple[list, set[bytes]]:
        """Replies for the requests with these keys, from the cache where possible, each distinct key asked once
        (``request(i)`` makes the i-th request, only when the cache lacks it; ``legacy(i)`` gives its key as an
        older simrun wrote it, looked up for a miss in a log that holds such keys).

        Misses go to the executor in chunks of the simulator's ``chunk_size``, and
        each chunk's replies are cached as soon as it returns (in any order), so a
        crash never loses a finished call; replies ``keep`` rejects (failures) are never cached,
        and a cached one it rejects (kept by an older version) is asked again.
        Returns the replies in order and the keys that came from the cache.
        """
        replies: dict[bytes, Any] = {}
        if self.use_cache:
            recent, unknown = self.recent, {}
            for key in keys:
                if (reply := recent.get(key)) is None:
                    unknown[key] = None
                else:
                    replies[key] = reply
            read = {k: reply for k, v in self.store.cache.get(unknown).items() if keep(reply := decode(v))}
            self.remember(read)
            replies.update(read)
        first_seen: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in replies:
                first_seen.setdefault(key, i)
        if first_seen and legacy is not None and self.use_cache and self.store.cache.legacy_keys:
            older = {legacy(i): key for key, i in first_seen.items()}
            for old_key, value in self.store.cache.get(older).items():
                if keep(reply := decode(value)):
                    replies[older[old_key]] = reply
                    del first_seen[older[old_key]]
        cached = set(replies)
        misses = list(first_seen.values())
        size = max(1, executor.simulator.chunk_size)
        chunks = [misses[start : start + size] for start in range(0, len(misses), size)]
        for index, fresh in executor.map(method, [[request(i) for i in chunk] for chunk in chunks], options):
            wanted = chunks[index]
            if len(fresh) != len(wanted):
                raise RuntimeError(f"the simulator returned {len(fresh)} replies for {len(wanted)} requests")
            new = {keys[i]: reply for i, reply in zip(wanted, fresh)}
            if kept := {k: encode(r) for k, r in new.items() if keep(r)}:
                self.store.cache.put(executor.simulator.model, kept)
                self.remember({k: new[k] for k in kept})
            replies.update(new)
        return [replies[k] for k in keys], cached

    def remember(self, replies: dict[bytes, Any]) -> None:
        """Keep replies just read from or written to the cache for the prompts asked again (a population's
        personas repeat), up to ``RECENT_REPLIES``: they skip the look-up and the decoding."""
        if len(self.recent) + len(replies) > RECENT_REPLIES:
            self.recent.clear()
        self.recent.update(replies)

    def answers(
        self, keys: list[bytes], prompt: Callable[[int], Prompt], executor: Executor, prompt_keys: PromptKeys
    ) -> tuple[list[ModelAnswer], set[bytes]]:
        """Model answers through the cache for the prompts with these keys (``prompt(i)`` makes the i-th); answers
        that failed are not cached. Returns them in order and the keys that came from the cache."""
        return self.through_cache(
            keys,
            prompt,
            executor,
            "answer",
            {},
            encode=pack_answer,
            decode=unpack_answer,
            keep=lambda a: a.error is None,
            legacy=lambda i: prompt_keys.of(prompt(i), legacy=True),
        )

    def generate(
        self,
        executor: Executor,
        prompts: list[str],
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict | None = None,
    ) -> list[str]:
        """The simulator's text generation through the cache.

        A reply that is empty (the backend gave up) or breaks ``json_schema`` is
        returned for the enricher to judge but never cached: whatever a
        backend's constrained decoding cannot enforce is checked here.
        """
        request = {
            "model": executor.simulator.cache_identity(),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "schema": json_schema,
        }
        keys = [cache_key_of(dumps({**request, "generate": p})) for p in prompts]
        texts, _ = self.through_cache(
            keys,
            prompts.__getitem__,
            executor,
            "generate",
            {"max_tokens": max_tokens, "temperature": temperature, "json_schema": json_schema},
            encode=lambda t: json.dumps({"text": t}),
            decode=lambda raw: json.loads(raw)["text"],
            keep=bool if json_schema is None else schema_check(json_schema),
        )
        return texts
