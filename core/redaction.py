"""Secrets never reach the run log or the terminal: their values are replaced wherever error text is kept or shown.

A backend that reads a secret (an API key from the environment) registers its
value with ``secret``; the engine, the store and the command line pass every
error text they keep or print through ``redact``. A server that echoes the key
in its reply then leaves ``***`` in ``runs.error``, not the key.
"""

from __future__ import annotations

MASK = "***"
MIN_SECRET = 6  # shorter values would mask ordinary words
_secrets: set[str] = set()


def secret(value: str) -> str:
    """Remember ``value`` as a secret to mask from now on; returns it unchanged."""
    if len(value) >= MIN_SECRET:
        _secrets.add(value)
    return value


def redact(text: str) -> str:
    """``text`` with every registered secret's value masked."""
    for value in sorted(_secrets, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
