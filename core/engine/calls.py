"""Asking the simulator through the cache and the executor: the one place a model call is made.

Each distinct request is asked once: what the cache holds is read from it (or from the replies a run keeps at
hand), the rest goes to the executor in chunks, and each chunk's replies are cached the moment they arrive.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from ..components import Executor
from ..models import ModelAnswer, Prompt
from ..schemas import schema_check
from ..store import PromptKeys, Store, cache_key_of, dumps, pack_answer, unpack_answer

RECENT_REPLIES = 10_000  # cached replies a run keeps at hand (about 1.4 KB each: 14 MB at most)


def answered(answer: ModelAnswer) -> bool:
    """Worth caching: a failure (``error`` set) is asked again next time."""
    return answer.error is None


class Lookup(NamedTuple):
    """Requests looked up in the cache: their keys, the replies known so far by key (the cache's, then each
    chunk's as it arrives), the keys the cache held, the misses as chunks of request indices, the keys an
    earlier lookup has already sent (``awaited``: their replies come with its chunks, streaming), and the keys
    whose reply the cache holds under that very key (``held``: an answer need not store it again)."""

    keys: list[bytes]
    replies: dict[bytes, Any]
    cached: set[bytes]
    chunks: list[list[int]]
    awaited: set[bytes]
    held: set[bytes]


class ModelCalls:
    """Model calls through the cache of ``store`` (``use_cache=False``: every call is sent, and cached)."""

    def __init__(self, store: Store, use_cache: bool = True):
        self.store = store
        self.use_cache = use_cache
        self.recent: dict[bytes, Any] = {}  # cache key -> the reply the cache holds under it (``remember``)
        # streaming: a key sent and not answered yet -> the later lookups waiting for its reply, so a prompt two
        # batches in flight share is sent once
        self.in_flight: dict[bytes, list[Lookup]] = {}

    def look_up(
        self,
        keys: list[bytes],
        decode: Callable[[str | bytes], Any],
        keep: Callable[[Any], bool],
        chunk_size: int,
        legacy: Callable[[int], bytes] | None = None,
        share: bool = False,
    ) -> Lookup:
        """What the cache holds for these keys (``legacy(i)`` gives the i-th key as an older simrun wrote it,
        looked up for a miss in a log that holds such keys); the rest, each distinct key once, in chunks of
        ``chunk_size`` request indices. A cached reply ``keep`` rejects (kept by an older version) is a miss, and
        leaves the cache.
        ``share``: a miss another lookup has sent and not had answered yet waits for that reply instead."""
        replies: dict[bytes, Any] = {}
        if self.use_cache:
            recent, unknown = self.recent, {}
            for key in keys:
                if (reply := recent.get(key)) is None:
                    unknown[key] = None
                else:
                    replies[key] = reply
            stored = self.store.cache.get(unknown)
            read = {k: reply for k, v in stored.items() if keep(reply := decode(v))}
            if len(read) < len(stored) and not self.store.read_only:  # no answer can refer to such an entry: its
                # request is asked again in its place
                self.store.cache.forget({k: v for k, v in stored.items() if k not in read})
            self.remember(read)
            replies.update(read)
        held = set(replies)
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
        awaited = {key for key in first_seen if key in self.in_flight} if share else set()
        misses = [i for key, i in first_seen.items() if key not in awaited]
        size = max(1, chunk_size)
        chunks = [misses[start : start + size] for start in range(0, len(misses), size)]
        lookup = Lookup(keys, replies, set(replies), chunks, awaited, held)
        if share:
            for key in awaited:
                self.in_flight[key].append(lookup)
            self.in_flight.update((keys[i], []) for i in misses)
        return lookup

    def keep_chunk(
        self,
        lookup: Lookup,
        index: int,
        fresh: list,
        encode: Callable[[Any], str | bytes],
        keep: Callable[[Any], bool],
    ) -> None:
        """The replies to chunk ``index`` of ``lookup``, cached the moment they arrive (those ``keep`` accepts:
        a failure is never cached)."""
        wanted = lookup.chunks[index]
        if len(fresh) != len(wanted):
            raise RuntimeError(f"the simulator returned {len(fresh)} replies for {len(wanted)} requests")
        new = {lookup.keys[i]: reply for i, reply in zip(wanted, fresh)}
        held: set[bytes] = set()
        if kept := {k: encode(r) for k, r in new.items() if keep(r)}:
            held = self.store.cache.put(kept)
            self.remember({k: new[k] for k in held})
        lookup.replies.update(new)
        lookup.held.update(held)
        if self.in_flight:
            for key, reply in new.items():
                for waiting in self.in_flight.pop(key, ()):
                    waiting.replies[key] = reply
                    waiting.awaited.discard(key)
                    if key in held:
                        waiting.held.add(key)

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
        (``request(i)`` makes the i-th request, only when the cache lacks it), the misses through the executor
        in chunks of the simulator's ``chunk_size``, each cached as it returns, in any order, so a crash never
        loses a finished call. Returns the replies in order and the keys that came from the cache."""
        lookup = self.look_up(keys, decode, keep, executor.simulator.chunk_size, legacy)
        requests = [[request(i) for i in chunk] for chunk in lookup.chunks]
        for index, fresh in executor.map(method, requests, options):
            self.keep_chunk(lookup, index, fresh, encode, keep)
        return [lookup.replies[k] for k in keys], lookup.cached

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
            pack_answer,
            unpack_answer,
            answered,
            legacy=lambda i: prompt_keys.of(prompt(i), legacy=True),
        )

    def answer_lookup(
        self, keys: list[bytes], prompt: Callable[[int], Prompt], chunk_size: int, prompt_keys: PromptKeys
    ) -> Lookup:
        """``look_up`` for model answers, for a caller that sends the chunks itself (streaming dispatch): a prompt
        an earlier batch has sent and not had answered is not sent again, its reply shared."""
        return self.look_up(
            keys,
            unpack_answer,
            answered,
            chunk_size,
            legacy=lambda i: prompt_keys.of(prompt(i), legacy=True),
            share=True,
        )

    def keep_answers(self, lookup: Lookup, index: int, fresh: list[ModelAnswer]) -> None:
        self.keep_chunk(lookup, index, fresh, pack_answer, answered)

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
