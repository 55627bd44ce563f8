"""The human-time ledger: expert seconds behind the data a run saw, once per unique example.

A run that reads an example in four epochs paid for it once: seconds are summed over the unique
``(source, id)`` pairs of its plan, never over its entries. Work that produced no row (a pick of
neither) is spread evenly over the rows its source kept (``overhead``), like rejected teacher
samples in the compute ledger. Pure functions, no I/O.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping


def per_row_overhead(discarded_s: float, rows: int) -> float:
    return discarded_s / rows if rows else 0.0


def run_seconds(entries: Iterable[tuple[str, str]], seconds: Mapping[str, Mapping[str, float]],
                overhead: Mapping[str, float] | None = None) -> dict:
    """``{"human_s": total, "sources": {source: {"rows": unique rows, "human_s": seconds}}}``.

    ``entries``: the run's ``(source, id)`` reads in any order, repeats included; ``seconds[source][id]``:
    a row's own expert seconds (a source or row not listed costs 0: raw teacher output).
    """
    overhead = overhead or {}
    seen: set[tuple[str, str]] = set()
    books: dict[str, dict] = {}
    for source, row_id in entries:
        if (source, row_id) in seen:
            continue
        seen.add((source, row_id))
        book = books.setdefault(source, {"rows": 0, "human_s": 0.0})
        book["rows"] += 1
        book["human_s"] += float(seconds.get(source, {}).get(row_id, 0.0)) + float(overhead.get(source, 0.0))
    return {"human_s": sum(b["human_s"] for b in books.values()), "sources": books}
