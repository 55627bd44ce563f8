"""A dataset world's local files (``path: json|csv|parquet`` + ``data_files``), read here row by row.

distill reads them itself rather than through ``datasets.load_dataset`` for two reasons. Every
problem names the file and the row (bad UTF-8, a line that is not JSON, a truncated Parquet file, a
field of the wrong type or missing), where the library says "magic bytes not found in footer" or
runs on with a cast value. And what a step reads is what its id hashed: ``datasets`` keeps an Arrow
copy of local files in its cache, keyed by path and modification time, so a file rewritten within
one mtime tick could be served stale; these reads go to the file every time.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

LOCAL_FORMATS = ("json", "csv", "parquet")


class DataFileError(ValueError):
    """One line naming the file, the row (1-based, as an editor shows it) and what is wrong there."""


def split_files(data_files, split: str, key: str) -> list[str]:
    """The files of ``split``: a dict's entry for it; a plain file or list is datasets' 'train'."""
    if isinstance(data_files, dict):
        if split not in data_files:
            raise DataFileError(f"{key}.split={split!r}: not among data_files' splits {sorted(data_files)}")
        files = data_files[split]
    elif split != "train":
        raise DataFileError(f"{key}.split={split!r}: data_files without split names hold only 'train'")
    else:
        files = data_files
    names = []
    for pattern in [files] if isinstance(files, str) else list(files):
        path = os.path.expanduser(pattern)
        names += sorted(glob.glob(path)) if glob.has_magic(path) else [path]
    return names


def read_rows(fmt: str, names: list[str]) -> Iterator[tuple[str, int, dict]]:
    """(file, row number, row) for every row of the files, in order."""
    reader = {"json": _json_rows, "csv": _csv_rows, "parquet": _parquet_rows}[fmt]
    for name in names:
        if not os.path.isfile(name):
            raise DataFileError(f"{name}: no such file" if not os.path.exists(name)
                                else f"{name}: not a regular file")
        yield from ((name, number, row) for number, row in reader(name))


def _text(name: str) -> str:
    data = Path(name).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DataFileError(f"{name} row {line}: not UTF-8 (byte {data[exc.start]:#04x} at offset "
                            f"{exc.start})") from None


def _json_rows(name: str) -> Iterator[tuple[int, dict]]:
    text = _text(name)
    if text.lstrip().startswith("["):  # one JSON array of objects, which datasets' json reader also takes
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{name} row {exc.lineno}: not valid JSON ({exc.msg} at column "
                                f"{exc.colno})") from None
        yield from ((i, _object(name, i, row)) for i, row in enumerate(rows, 1))
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{name} row {number}: not valid JSON ({exc.msg} at column "
                                f"{exc.colno})") from None
        yield number, _object(name, number, row)


def _object(name: str, number: int, row) -> dict:
    if not isinstance(row, dict):
        raise DataFileError(f"{name} row {number}: a JSON {type(row).__name__}, not an object with the "
                            "task's fields")
    return row


def _csv_rows(name: str) -> Iterator[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(_text(name), newline=""))
    for row in reader:
        if None in row:  # more cells than the header names
            raise DataFileError(f"{name} row {reader.line_num}: more cells than the header's "
                                f"{len(reader.fieldnames)}")
        yield reader.line_num, row


def _parquet_rows(name: str) -> Iterator[tuple[int, dict]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    number = 0
    try:
        table = pq.ParquetFile(name)
        for batch in table.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (pa.ArrowException, OSError) as exc:
        where = f" row {number + 1}" if number else ""
        raise DataFileError(f"{name}{where}: not a readable Parquet file "
                            f"({str(exc).splitlines()[0]})") from None


def check_fields(row: dict, fields: tuple[str, ...], name: str, number: int) -> None:
    """The adapter's fields are there and hold text; anything else would train on a cast value."""
    for field in fields:
        if field not in row:
            raise DataFileError(f"{name} row {number}: missing field {field!r} (has {sorted(row)[:8]})")
        value = row[field]
        if isinstance(value, str) and not value.strip():
            raise DataFileError(f"{name} row {number}: field {field!r} is empty")
        if not isinstance(value, str):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            kind = "null" if value is None else f"{type(value).__name__} {shown}"
            raise DataFileError(f"{name} row {number}: field {field!r} is {kind}, expected text")
