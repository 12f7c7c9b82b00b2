"""Memory: how a run keeps Python's garbage collector from rescanning what it loaded."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


class Collector:
    """The process's one collector, shared by runs side by side on threads (``sweep --parallel``): the first run
    in changes it, the last out puts it back."""

    lock = threading.Lock()
    runs = 0
    threshold: tuple[int, ...] = ()
    froze = False


@contextlib.contextmanager
def few_collections() -> Iterator[None]:
    """Python's cycle collector, left as it is, rescans every object the process has loaded (modules, schemas,
    the pipeline) while a run allocates millions of short-lived ones: a tenth of the engine's time per answer.
    For the block those objects are frozen out of its scans and the youngest generation is collected less
    often; both are put back when it ends (a freeze the caller made itself is left alone)."""
    with Collector.lock:
        if Collector.runs == 0:
            Collector.threshold = gc.get_threshold()
            Collector.froze = gc.get_freeze_count() == 0
            if Collector.froze:
                gc.freeze()
            gc.set_threshold(max(Collector.threshold[0], 50_000), *Collector.threshold[1:])
        Collector.runs += 1
    try:
        yield
    finally:
        with Collector.lock:
            Collector.runs -= 1
            if Collector.runs == 0:
                gc.set_threshold(*Collector.threshold)
                if Collector.froze:
                    gc.unfreeze()
