"""The model-call cache (``llm_cache``): every reply a simulator gave, under a key made of what was asked.

A reply is asked once: the engine looks each prompt's key up here before it sends anything, and caches each
chunk's replies as they arrive, so a killed run resumes without repeating a call.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from ..concurrency import StoreError, writes
from ..models import OPTION_LABELS, ModelAnswer, Prompt
from .encoding import dumps, json_string
from .table import Table

KEY_BYTES = 16  # a cache key's length; an answer asked in several option orders keeps one per order
CLUSTER = 4  # bytes of a prompt's cache key taken from its system text alone
PACKED = 2  # the first byte of an answer packed as ``pack_answer`` writes it now
PACKED_V1 = 1  # ... as simrun wrote it before m010: every field, always
HEAD = struct.Struct("<BBB")  # format, option count, which optional fields follow (the flags below)
INVALID, TOKENS, LATENCY = 1, 2, 4
OPTIONAL = ((INVALID, "invalid", "d"), (TOKENS, "tokens", "q"), (LATENCY, "latency_ms", "d"))
UNSET = {"invalid": 0.0, "tokens": 0, "latency_ms": 0.0, "raw": "", "error": None}  # what a stored answer may leave out


def cache_key_of(request: str) -> bytes:
    """A model call's cache key: the first 16 bytes of the SHA-256 of the request."""
    return hashlib.sha256(request.encode()).digest()[:KEY_BYTES]


def pack_answer(answer: ModelAnswer) -> bytes | str:
    """A model answer as the run log stores it: format byte, option count, flags, the option probabilities as
    float64 (options A, B, ... in order: every prompt's labels), invalid, tokens and latency where not zero, then
    the raw text. Exact, and a fifth of its JSON. An answer with other labels or an error stays JSON."""
    values = list(answer.distribution.values())
    if answer.error is not None or list(answer.distribution) != list(OPTION_LABELS[: len(values)]):
        return answer.model_dump_json(exclude_defaults=True)
    flags, fields, extra = 0, "", []
    for flag, name, code in OPTIONAL:
        if value := getattr(answer, name):
            flags, fields = flags | flag, fields + code
            extra.append(value)
    return b"".join(
        (
            HEAD.pack(PACKED, len(values), flags),
            struct.pack(f"<{len(values)}d{fields}", *values, *extra),
            answer.raw.encode(),
        )
    )


def unpack_answer(stored: bytes | str) -> ModelAnswer:
    """The model answer ``pack_answer`` stored (in either byte format, or JSON)."""
    if isinstance(stored, str):
        return ModelAnswer.model_validate_json(stored)
    return ModelAnswer(**answer_fields(stored))


def answer_fields(stored: bytes | str | None) -> dict[str, Any]:
    """The fields of a stored model answer, as ``unpack_answer`` would validate them: for readers of the whole
    log, which simrun wrote and need not check again."""
    if stored is None:
        raise StoreError("an answer refers to a model reply llm_cache no longer holds: was the cache emptied by hand?")
    if isinstance(stored, str):
        return {**UNSET, **json.loads(stored)}
    if stored[0] == PACKED_V1:
        n = stored[1]
        layout = struct.Struct(f"<BBdqd{n}d")
        _, _, invalid, tokens, latency_ms, *values = layout.unpack_from(stored)
        fields = {"invalid": invalid, "tokens": tokens, "latency_ms": latency_ms}
        return {"distribution": dict(zip(OPTION_LABELS, values)), **fields, "raw": stored[layout.size :].decode()}
    _, n, flags = HEAD.unpack_from(stored)
    present = [(name, code) for flag, name, code in OPTIONAL if flags & flag]
    layout = struct.Struct(f"<{n}d{''.join(code for _, code in present)}")
    values = layout.unpack_from(stored, HEAD.size)
    return {
        **UNSET,
        "distribution": dict(zip(OPTION_LABELS, values[:n])),
        **{name: value for (name, _), value in zip(present, values[n:])},
        "raw": stored[HEAD.size + layout.size :].decode(),
    }


def sql_distribution(stored: bytes | str | None) -> str | None:
    """``simrun_distribution(reply)`` in SQL: a stored reply's option probabilities as JSON."""
    return None if stored is None else dumps(answer_fields(stored)["distribution"])


def sql_invalid(stored: bytes | str | None) -> float | None:
    """``simrun_invalid(reply)`` in SQL: a stored reply's probability mass outside the options."""
    return None if stored is None else answer_fields(stored)["invalid"]


def sql_raw(stored: bytes | str | None) -> str | None:
    """``simrun_raw(reply)`` in SQL: a stored reply's raw text (the model's top token or text)."""
    return None if stored is None else answer_fields(stored)["raw"]


SQL_FUNCTIONS = {"simrun_distribution": sql_distribution, "simrun_invalid": sql_invalid, "simrun_raw": sql_raw}


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
    def forget(self, entries: dict[bytes, str | bytes]) -> None:
        """Remove entries no answer refers to (replies the engine no longer accepts), so they can be asked again:
        each only while it holds the reply read (another process may have put its own in its place since)."""
        self.db.conn.executemany("delete from llm_cache where key = ? and response = ?", entries.items())

    @writes
    def put(self, entries: dict[bytes, str | bytes]) -> set[bytes]:
        """Cache replies: a key already held keeps its reply, so an entry never changes once written and an
        answer may refer to it. Returns the keys that now hold these very replies (all of them but for a
        reply asked again with the cache off, or another process's for the same request)."""
        conn = self.db.conn
        before = conn.total_changes
        conn.executemany("insert or ignore into llm_cache values (?, ?)", entries.items())
        if conn.total_changes - before == len(entries):
            return set(entries)
        return {key for key, value in self.get(entries).items() if value == entries[key]}
