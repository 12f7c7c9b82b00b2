"""Memory: how a run keeps Python's garbage collector from rescanning what it loaded."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def few_collections() -> Iterator[None]:
    """Python's cycle collector, left as it is, rescans every object the process has loaded (modules, schemas,
    the pipeline) while a run allocates millions of short-lived ones: a tenth of the engine's time per answer.
    For the block those objects are frozen out of its scans and the youngest generation is collected less
    often; both are put back when it ends (a freeze the caller made itself is left alone)."""
    threshold = gc.get_threshold()
    ours = gc.get_freeze_count() == 0
    if ours:
        gc.freeze()
    gc.set_threshold(max(threshold[0], 50_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if ours:
            gc.unfreeze()
