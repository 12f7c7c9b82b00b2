"""Several processes on one run log: waiting for SQLite's lock, and which process owns a run.

Writers take the lock for one whole transaction and retry it while another
process holds it past the busy timeout; a run being executed records its
owner (host, pid, process start time) so a second ``--resume`` of a live run is
refused and a dead owner's run taken over.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

LOCKED_RETRIES = 6  # whole write transactions retried after a busy timeout, with growing pauses
T = TypeVar("T")


class StoreError(Exception):
    """A run log that cannot be opened, or a run that another process owns, said in one line."""


def locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def process_started(pid: int) -> str | None:
    """When a process started (clock ticks since boot), so a reused pid is not taken for its predecessor."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_process() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": process_started(os.getpid())}


def alive(owner: dict[str, Any]) -> bool:
    """Whether a run's owning process still runs; an owner on another host is taken to be alive."""
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return owner.get("started") is None or process_started(owner["pid"]) == owner["started"]


def writes(method: Callable[..., T]) -> Callable[..., T]:
    """A Store method that writes: run whole in one write transaction (see ``Store.transact``)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        return self.transact(lambda: method(self, *args, **kwargs))

    return wrapper


def retrying(work: Callable[[], T]) -> T:
    """``work``, tried again with growing pauses while another process holds the lock past the busy timeout."""
    for attempt in range(LOCKED_RETRIES):
        try:
            return work()
        except sqlite3.OperationalError as exc:
            if not locked(exc) or attempt == LOCKED_RETRIES - 1:
                raise
            time.sleep(min(2**attempt, 10) * (0.5 + secrets.randbelow(100) / 100))
    raise AssertionError("unreachable")
