"""``distill compare RUN_DIR MODEL_A MODEL_B``: two evaluations of a run, compared item by item.

It reads the per-item scores a report step keeps in its ``records.json`` (the same rows the report is
fitted on), so it works for any finished run, also one whose report was written before this command.
A model is ``teacher`` (the ceiling), ``floor`` (the untrained student), or ``ARM:N[:SEED]`` (a
trained student; the lowest seed when SEED is left out). Both must carry 0/1 items of the same test set.
"""
from __future__ import annotations

import json
from pathlib import Path

from evals.analysis.cells import cross_coverage
from evals.analysis.formatting import ci, number
from evals.analysis.paired import mcnemar, min_detectable, paired_difference
from evals.analysis.records import SweepRecords


def _records(run_dir: Path) -> tuple[Path, SweepRecords]:
    found = []
    for path in sorted(run_dir.rglob("records.json")) if run_dir.is_dir() else [run_dir]:
        try:
            obj = json.loads(path.read_text())
            if isinstance(obj, dict):  # other steps keep a records.json of their own shape: skipped
                found.append((path, SweepRecords.of(obj)))
        except (OSError, ValueError):
            continue
    if not found:
        raise FileNotFoundError(f"{run_dir}: no report records.json with runs (has its report step "
                                "finished?)")
    if len(found) > 1:
        raise ValueError(f"{run_dir}: {len(found)} report records "
                         f"({', '.join(str(p) for p, _ in found[:3])}); "
                         "pass one report step's folder")
    return found[0]


def _model(records: SweepRecords, spec: str) -> tuple[str, list[float]]:
    if spec in ("teacher", "floor"):
        ref = records.ceiling if spec == "teacher" else records.floor
        if ref is None or ref.items is None:
            raise ValueError(f"model {spec!r}: this run's records have no per-item scores for it")
        return spec, ref.items
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(p.lstrip("-").isdigit() for p in parts[1:]):
        raise ValueError(f"model {spec!r}: expected teacher, floor or ARM:N[:SEED] (e.g. human:500:0)")
    arm, n = parts[0], int(parts[1])
    scored = [r for r in records.runs if r.items is not None]
    runs = sorted((r
                   for r in scored
                   if r.arm == arm and r.n == n and (len(parts) == 2 or r.seed == int(parts[2]))),
                  key=lambda r: r.seed)
    if not runs:
        have = sorted({f"{r.arm}:{r.n}" for r in scored})
        raise ValueError(f"model {spec!r}: no scored run; have {', '.join(have[:12])}")
    return f"{arm}:{n}:{runs[0].seed}", runs[0].items


def compare_text(run_dir: str | Path, a: str, b: str, level: float = 0.9) -> str:
    path, records = _records(Path(run_dir))
    (name_a, xa), (name_b, xb) = _model(records, a), _model(records, b)
    test = mcnemar(xa, xb)
    diff = paired_difference(xa, xb, level=level)
    p = (sum(xa) + sum(xb)) / (2 * len(xa))
    mdd = min_detectable(len(xa), p=p, level=level)
    outside = "outside noise" if diff.lower > 0 or diff.upper < 0 else "within noise (the interval spans 0)"
    lines = [f"records: {path}",
             (f"A = {name_a}: {number(sum(xa) / len(xa))} points; B = {name_b}: "
              f"{number(sum(xb) / len(xb))} points; "
             f"{len(xa)} paired test items"),
             (f"A - B: {ci(diff, unit=' points')} "
             f"({100 * level:.0f}% paired bootstrap over items): {outside}"),
             (f"exact McNemar: {test.a_only} items only A gets right, {test.b_only} only B; "
             f"two-sided p = {test.p_value:.3g}"),
             (f"minimum detectable difference at {len(xa)} items ({100 * level:.0f}% two-sided, 80% power, "
             f"one seed each, item noise only): {number(mdd)} points"),
             ("(one seed per model: a difference between two training runs also carries seed noise, "
              "which this "
             "comparison does not see; the report's per-cell intervals do)")]
    return "\n".join(lines)


def seed_sets_text(run_a: str | Path, run_b: str | Path, level: float = 0.9) -> str:
    """``distill coverage RUN_A RUN_B``: two runs of one recipe with different seeds, cell by cell.

    Each run's per-cell interval (the report's rule: t over seeds plus the item error) against the other
    run's cell mean, and the rate over cells: how often one seed set's interval holds another's mean.
    """
    (path_a, rec_a), (path_b, rec_b) = _records(Path(run_a)), _records(Path(run_b))
    rows = cross_coverage(_cells(rec_a), _cells(rec_b), level)
    if not rows:
        raise ValueError(f"{run_a} and {run_b}: no (arm, N) cell was measured in both runs")
    lines = [f"A: {path_a}", f"B: {path_b}",
             (f"{'cell':<18} {'A mean [' + f'{100 * level:.0f}% interval]':<26} {'B mean [interval]':<24} B "
              "in A  A in B")]
    for r in rows:
        arm, n = r["cell"]
        lines.append(f"{arm + ':' + str(n):<18} {ci(r['a']):<26} {ci(r['b']):<24} "
                     f"{'yes' if r['b_in_a'] else 'NO':<7} {'yes' if r['a_in_b'] else 'NO'}")
    b_in_a, a_in_b = sum(r["b_in_a"] for r in rows), sum(r["a_in_b"] for r in rows)
    hits, k = b_in_a + a_in_b, 2 * len(rows)
    two_seeds = all(r["seeds"] == (2, 2) for r in rows)
    expected = ("with 2 seeds a cell's interval holds another seed set's mean about 86% of the time when the "
                "intervals are right" if two_seeds
                else "right intervals hold another seed set's mean less often "
                "than the nominal level, since that mean carries its own seed noise")
    lines.append(f"A's intervals hold B's cell means in {b_in_a} of {len(rows)} cells, B's hold A's in "
                 f"{a_in_b} of "
                 f"{len(rows)}: {hits} of {k} ({100 * hits / k:.0f}%) at a nominal {100 * level:.0f}% "
                 f"({expected})")
    return "\n".join(lines)


def _cells(records: SweepRecords) -> dict:
    cells: dict = {}
    for r in records.feasible:
        cells.setdefault((r.arm, r.n), []).append((r.score, r.items))
    return cells


