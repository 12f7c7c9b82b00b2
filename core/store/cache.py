"""The model-call cache (``llm_cache``): every reply a simulator gave, under a key made of what was asked.

A reply is asked once: the engine looks each prompt's key up here before it sends anything, and caches each
chunk's replies as they arrive, so a killed run resumes without repeating a call.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from ..concurrency import writes
from ..migrations import text_hash
from ..models import OPTION_LABELS, ModelAnswer, Prompt
from .encoding import dumps, json_string
from .table import Table

KEY_BYTES = 16  # a cache key's length; an answer asked in several option orders keeps one per order
CLUSTER = 4  # bytes of a prompt's cache key taken from its system text alone
ANSWER_FORMAT = 1  # the first byte of a cached answer stored as bytes


def cache_key_of(request: str) -> bytes:
    """A model call's cache key: the first 16 bytes of the SHA-256 of the request."""
    return hashlib.sha256(request.encode()).digest()[:KEY_BYTES]


def pack_answer(answer: ModelAnswer) -> bytes | str:
    """A model answer as the cache stores it: format byte, option count, invalid, tokens, latency, the option
    probabilities as float64 (options A, B, ... in order: every prompt's labels), then the raw text. Exact, and a
    third of its JSON. An answer with other labels or an error (never cached, but kept general) stays JSON."""
    values = list(answer.distribution.values())
    if answer.error is not None or list(answer.distribution) != list(OPTION_LABELS[: len(values)]):
        return answer.model_dump_json(exclude_defaults=True)
    head = struct.pack(
        f"<BBdqd{len(values)}d", ANSWER_FORMAT, len(values), answer.invalid, answer.tokens, answer.latency_ms, *values
    )
    return head + answer.raw.encode()


def unpack_answer(stored: bytes | str) -> ModelAnswer:
    if isinstance(stored, str):
        return ModelAnswer.model_validate_json(stored)
    n = stored[1]
    _, _, invalid, tokens, latency_ms, *values = struct.unpack_from(f"<BBdqd{n}d", stored)
    return ModelAnswer(
        distribution=dict(zip(OPTION_LABELS, values)),
        invalid=invalid,
        tokens=tokens,
        latency_ms=latency_ms,
        raw=stored[struct.calcsize(f"<BBdqd{n}d") :].decode(),
    )


class PromptKeys:
    """The cache key of asking prompts of the simulator ``identity`` describes. The request is
    ``{"labels", "model": identity, "sample", "system", "user"}`` as ``dumps`` writes it, each prompt's ``repeat``
    its sample; its key is 4 bytes of the SHA-256 of the system text, then 12 of the request's.

    The system text's bytes come first so that a persona's questions sit side by side in ``llm_cache``: a key
    that is a hash of the whole request lands each reply on a random page, and a commit writes a page per reply.
    ``legacy=True`` gives the key simrun used before (16 bytes of the request's hash), which an older log's
    cache and answers hold. The request is hashed as it is written, part by part: everything up to the system
    text once per labels and sample, a persona's system text once for all of ``asks`` (each labels, sample and
    the user texts asked with them: a run's questions), the user text per prompt.
    """

    def __init__(self, identity: dict, asks: Iterable[tuple[Sequence[str], int, Sequence[str]]] = ()):
        self.model = dumps(identity)
        self.starts: dict[tuple[tuple[str, ...], int], Any] = {}  # (labels, sample) -> hash up to the system text
        self.asks = [(self.start(labels, repeat), [self.end(user) for user in users]) for labels, repeat, users in asks]

    def start(self, labels: Sequence[str], repeat: int) -> Any:
        """The hash of a request up to its system text."""
        which = (tuple(labels), repeat)
        if which not in self.starts:
            self.starts[which] = hashlib.sha256(
                f'{{"labels":{dumps(list(labels))},"model":{self.model},"sample":{repeat},"system":'.encode()
            )
        return self.starts[which]

    @staticmethod
    def end(user: str) -> bytes:
        """A request's bytes after its system text."""
        return f',"user":{json_string(user)}}}'.encode()

    def persona(self, system: str) -> list[bytes]:
        """The key of every prompt of ``asks`` asked with this system text, in order."""
        encoded = json_string(system).encode()
        cluster = hashlib.sha256(encoded).digest()[:CLUSTER]
        keys = []
        for start, ends in self.asks:
            head = start.copy()
            head.update(encoded)
            for end in ends:
                request = head.copy()
                request.update(end)
                keys.append(cluster + request.digest()[: KEY_BYTES - CLUSTER])
        return keys

    def of(self, prompt: Prompt, legacy: bool = False) -> bytes:
        """One prompt's key."""
        encoded = json_string(prompt.system).encode()
        request = self.start(prompt.labels, prompt.repeat).copy()
        request.update(encoded)
        request.update(self.end(prompt.user))
        if legacy:
            return request.digest()[:KEY_BYTES]
        return hashlib.sha256(encoded).digest()[:CLUSTER] + request.digest()[: KEY_BYTES - CLUSTER]


class Cache(Table):
    @functools.cached_property
    def legacy_keys(self) -> bool:
        """Whether the cache holds replies under the prompt keys simrun used before m008 (``PromptKeys``)."""
        return self.db.execute("select 1 from cache_formats where format = 'whole-request'").fetchone() is not None

    def get(self, keys: Iterable[bytes]) -> dict[bytes, str | bytes]:
        """Cached responses, as stored (JSON text, or ``pack_answer`` bytes), for the keys found."""
        wanted = list(keys)
        found: dict[bytes, str | bytes] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"select key, response from llm_cache where key in ({marks})", chunk))
        return found

    @writes
    def put(self, model: str, entries: dict[bytes, str | bytes]) -> None:
        self.store.texts.keep([model])
        created, model_ref = int(dt.datetime.now(dt.UTC).timestamp()), text_hash(model)
        self.db.conn.executemany(
            "insert or replace into llm_cache values (?, ?, ?, ?)",
            [(key, model_ref, value, created) for key, value in entries.items()],
        )
