"""How the run log writes values: canonical JSON, hashes, ids and times."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable
from typing import Any


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_id() -> str:
    """Sortable and readable: UTC time, then randomness."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


json_string = json.encoder.encode_basestring_ascii  # a str as dumps writes it, without building an encoder


def json_default(value: Any) -> Any:
    """What the log writes for a value JSON lacks: a NumPy number or array as the Python one it holds (a
    sampler's ``np.int64`` age stays a number), anything else as its ``str``."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _json_writer(sort_keys: bool, separators: tuple[str, str]) -> Callable[[Any], str]:
    """``json.dumps`` with these options and ``default=json_default``, as a function. ``json.dumps`` builds an
    encoder on every call; this builds it once, with the arguments ``iterencode`` gives it, so the output is the
    same (the run log's hot path)."""
    encoder = json.JSONEncoder(sort_keys=sort_keys, separators=separators, default=json_default)
    if json.encoder.c_make_encoder is None:
        return encoder.encode
    item, key = separators
    make = json.encoder.c_make_encoder(
        None, json_default, json.encoder.encode_basestring_ascii, None, key, item, sort_keys, False, True
    )
    return lambda value: "".join(make(value, 0))


dumps = _json_writer(sort_keys=True, separators=(",", ":"))  # canonical: compact, keys sorted
compact_dumps = _json_writer(sort_keys=False, separators=(",", ":"))  # compact, in the order given
plain_dumps = _json_writer(sort_keys=False, separators=(", ", ": "))  # as json.dumps writes, json_default's way
