"""What every table object of the run log shares: the store it belongs to, its connection, its transactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlite_utils

from ..concurrency import T

if TYPE_CHECKING:
    from . import Store


class Table:
    """One concern of the run log (runs, the cache, answers, results), handed out by its ``Store``. A method
    marked ``@writes`` runs in one write transaction of the store, shared with any it is called inside."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def db(self) -> sqlite_utils.Database:
        return self.store.db

    def transact(self, work: Callable[[], T]) -> T:
        return self.store.transact(work)
