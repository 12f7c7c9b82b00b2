"""Streaming row writers for csv, jsonl and parquet: batches in, one file out, flat memory."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

FORMATS = ("csv", "jsonl", "parquet")


def format_for(path: str | None, given: str | None) -> str:
    """The format asked for, else the one the file name implies (default csv)."""
    if given:
        return given
    suffix = Path(path or "").suffix.lstrip(".").lower()
    return {"parquet": "parquet", "jsonl": "jsonl", "json": "jsonl"}.get(suffix, "csv")


class RowWriter:
    """Write rows batch by batch. CSV and parquet take their columns from the first batch."""

    def __init__(self, path: str | None, fmt: str):
        if fmt == "parquet" and not path:
            raise ValueError("parquet needs an output file (-o FILE)")
        self.path, self.fmt = path, fmt
        self.columns: list[str] | None = None
        self.stream: TextIO | None = None
        self.csv: csv.DictWriter | None = None
        self.parquet: Any = None
        self.rows = 0

    def __enter__(self) -> RowWriter:
        if self.fmt == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise RuntimeError("parquet needs pyarrow: pip install 'simrun[export]'") from None
        else:
            self.stream = open(self.path, "w", newline="") if self.path else sys.stdout
        return self

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.columns is None:
            self.columns = list(dict.fromkeys(k for r in rows for k in r))
        extra = {k for r in rows for k in r} - set(self.columns)
        if extra and self.fmt != "jsonl":
            raise ValueError(
                f"rows gained column(s) {sorted(extra)} after the first batch; "
                f"{self.fmt} needs one set of columns (use jsonl)"
            )
        self.rows += len(rows)
        if self.fmt == "jsonl":
            assert self.stream is not None
            self.stream.writelines(json.dumps(r, default=str) + "\n" for r in rows)
        elif self.fmt == "csv":
            if self.csv is None:
                assert self.stream is not None
                self.csv = csv.DictWriter(self.stream, fieldnames=self.columns)
                self.csv.writeheader()
            self.csv.writerows(rows)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist([{c: r.get(c) for c in self.columns} for r in rows])
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema)
            self.parquet.write_table(table.cast(self.parquet.schema))

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.parquet is not None:
            self.parquet.close()
        if self.stream is not None and self.stream is not sys.stdout:
            self.stream.close()
