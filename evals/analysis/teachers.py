"""The teachers report: each teacher's data-wall results side by side.

Input: a ``TeachersRecords`` (``records.json`` of a teachers report step; typed in
``evals.analysis.records``):
per teacher, in recipe order, its ceiling and floor records and the ``fits`` / ``crossovers`` /
``best_per_n`` of its own data-wall report (``evals.report.sweep``), whose intervals come from
``evals.analysis.uncertainty``'s bootstrap. The human
arm is the same runs under every teacher (one training per mix), so its fit is identical across columns.

Across teachers the bootstraps are separate (each teacher's report resampled its own runs), so the
slope of the synthetic asymptote on teacher accuracy gets its interval by treating each teacher's
asymptote interval as normal and simulating — an approximation, labelled as such in the report.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from evals.analysis.formatting import ci
from evals.analysis.records import ArmFit, BestMix, Crossing, Reference, Span, TeachersRecords
from evals.analysis.uncertainty import Interval, interval


def as_interval(d: Mapping | None) -> Interval | None:
    """An interval as the teachers' records (and report.json) write it."""
    return None if d is None else Interval(d["estimate"], d["lower"], d["upper"], d.get("level", 0.9))


def _ceiling(ref: Reference | None, level: float, n_boot: int, rng: np.random.Generator) -> Interval | None:
    """The teacher's accuracy with an item-bootstrap interval (its test items are the students')."""
    if ref is None:
        return None
    score, items = float(ref.score), ref.items
    if not items:
        return Interval(score, math.nan, math.nan, level)
    x = np.asarray(items, dtype=float)
    reps = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1) + (score - x.mean())
    return interval(reps, score, level)


def _arm(fits: Sequence[ArmFit], fraction: float) -> ArmFit | None:
    return next((f for f in fits if f.fraction == fraction), None)


def _plain(record: Span | Crossing | BestMix | None) -> dict | None:
    """A record as the report's rows carry it: the dict it was written as."""
    return None if record is None else record.dumped()


def teacher_rows(records: TeachersRecords | Mapping, *, level: float = 0.9, n_boot: int = 1000,
                 seed: int = 0) -> list[dict]:
    """Per teacher: ceiling, human and synthetic-only asymptotes, gap, crossover, best fraction."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in TeachersRecords.of(records).teachers:
        human, synth = _arm(t.fits, 0.0), _arm(t.fits, 1.0)
        names = {a.arm for a in (human, synth) if a}
        cross = next((c for c in t.crossovers if {c.leader, c.trailer} == names), None) \
            if len(names) == 2 else None
        best = max(t.best_per_n, key=lambda b: b.n) if t.best_per_n else None
        at_n = next((a for a in t.at_largest if synth and a.arm == synth.arm), None)
        rows.append({
            "name": t.name, "ceiling": float(t.ceiling.score) if t.ceiling else math.nan,
            "ceiling_iv": _ceiling(t.ceiling, level, n_boot, rng),
            "human_y_inf": human and _plain(human.y_inf), "synthetic_arm": synth and synth.arm,
            "synthetic_y_inf": synth and _plain(synth.y_inf), "gap": synth and _plain(synth.teacher_gap),
            # mean − teacher at its largest N
            "synthetic_at_n": at_n and {"n": at_n.n, "diff": _plain(at_n.diff)},
            "crossover": _plain(cross), "best": _plain(best),
            "best_measured": max((b.score.estimate for b in t.best_per_n), default=math.nan),
            "best_f_per_n": [(b.n, b.fraction, b.within_noise)
                             for b in sorted(t.best_per_n, key=lambda b: b.n)]})
    return rows


def identified(rows: Sequence[Mapping]) -> list[Mapping]:
    """Teachers whose synthetic-only asymptote is identified (not an interval over most of the range)."""
    return [r for r in rows if r["synthetic_y_inf"] and math.isfinite(r["synthetic_y_inf"]["estimate"])
            and math.isfinite(r["ceiling"])
            and r["synthetic_y_inf"]["upper"] - r["synthetic_y_inf"]["lower"] <= 0.5]


def asymptote_slope(rows: Sequence[Mapping], level: float = 0.9, n_sim: int = 4000,
                    seed: int = 0) -> Interval | None:
    """d(synthetic asymptote) / d(teacher accuracy) by least squares; 1 = one for one. Interval by
    simulating each asymptote as normal with its interval's half-width (the bootstraps are not paired)."""
    ok = identified(rows)
    x = np.array([r["ceiling"] for r in ok])
    if len(ok) < 2 or np.ptp(x) == 0:
        return None
    z = stats.norm.ppf((1 + level) / 2)
    est = np.array([r["synthetic_y_inf"]["estimate"] for r in ok])
    sd = np.array([(r["synthetic_y_inf"]["upper"] - r["synthetic_y_inf"]["lower"]) / (2 * z) for r in ok])
    sims = est + np.random.default_rng(seed).standard_normal((n_sim, est.size)) * np.nan_to_num(sd)
    xc = x - x.mean()
    slope = lambda y: (y - y.mean(axis=-1, keepdims=True)) @ xc / float(xc @ xc)
    return interval(slope(sims), float(slope(est[None, :])[0]), level)


def _at_largest(r: Mapping) -> str:
    """The measured side of the gap: the synthetic-only mean at its largest N against the teacher."""
    at = r.get("synthetic_at_n")
    if not at:
        return ""
    d = as_interval(at["diff"])
    where = "below" if d.upper < 0 else "above" if d.lower > 0 else "within noise of"
    return f" At its largest N ({at['n']:,.0f}) it scores {ci(d)} points against the teacher ({where} it)."


def _gap_sentence(r: Mapping) -> str:
    gap = as_interval(r["gap"])
    if gap is None or not math.isfinite(gap.estimate):
        return f"{r['name']} ({100 * r['ceiling']:.1f}): no synthetic-only fit." + _at_largest(r)
    y = as_interval(r["synthetic_y_inf"])
    if y is not None and y.upper - y.lower > 0.5:  # the interval spans most of the score range
        return (f"{r['name']} (teacher {ci(r['ceiling_iv'])}): synthetic-only asymptote {ci(y)}, not "
                "identified "
                f"by these runs (its interval spans most of the score range)." + _at_largest(r))
    where = ("below the teacher" if gap.lower > 0 else "above the teacher" if gap.upper < 0
             else "at the teacher within noise")
    return (f"{r['name']} (teacher {ci(r['ceiling_iv'])}): synthetic-only asymptote "
            f"{ci(y)}, "
            f"{where} (teacher − y∞ = {ci(gap)} points)." + _at_largest(r))


def _crossover_sentence(rows: Sequence[Mapping]) -> str:
    """Does the human/synthetic crossover move with teacher quality? Intervals that overlap: within noise."""
    by_acc = sorted(rows, key=lambda r: r["ceiling"])
    parts, found = [], []
    for r in by_acc:
        c = r["crossover"]
        if c is None:
            lead = r["best"]["arm"] if r["best"] else "?"
            parts.append(f"{r['name']}: no crossover in the measured range ({lead} best at the largest N)")
        else:
            n = as_interval(c["n"])
            parts.append(f"{r['name']}: {c['leader']} overtakes {c['trailer']} at "
                         f"N≈{ci(n, scale=1.0, digits=0, grouped=True)}")
            found.append((r, n))
    text = ("Crossover of the human and synthetic-only arms, teachers from weakest to strongest: "
            + "; ".join(parts) + ".")
    if len(found) >= 2:
        (weak, a), (strong, b) = found[0], found[-1]
        if b.lower > a.upper:
            text += (f" It moves out with teacher quality ({weak['name']} → {strong['name']}; "
                     "intervals apart).")
        elif b.upper < a.lower:
            text += f" It moves in with teacher quality ({weak['name']} → {strong['name']}; intervals apart)."
        else:
            text += " Whether it moves with teacher quality is within noise (the intervals overlap)."
    elif not found:
        text += (" No teacher's synthetic-only arm meets the human arm in the measured range, so whether the "
                 "crossover moves with teacher quality is not measured here.")
    elif len(found) < len(rows):
        text += " With crossovers missing for some teachers, their movement is not measured."
    return text


# students whose best asymptote (human or synthetic) stays below this (score fraction) learned too little
# for their gap to any teacher to say something about the teacher: flagged as a floor effect
FLOOR_WARNING = 0.10


def verdict(rows: Sequence[Mapping], slope: Interval | None) -> str:
    lines = [_gap_sentence(r) for r in rows]
    # measured means, not fitted asymptotes: a fit through points near zero can extrapolate anywhere
    best = max((r["best_measured"] for r in rows if math.isfinite(r.get("best_measured", math.nan))),
               default=None)
    if best is not None and best < FLOOR_WARNING:
        lines.append(f"No student's mean score reaches {100 * FLOOR_WARNING:.0f} points: the students "
                     "learned little, so "
                     "the gaps to the teachers are a floor effect; train the students longer before "
                     "reading them.")
    if slope is not None:
        kind = ("within noise of one for one" if slope.contains(1.0) else
                "less than one for one" if slope.upper < 1.0 else "more than one for one")
        used = identified(rows)
        which = ("teachers" if len(used) == len(rows) else
                 f"the {len(used)} teachers whose asymptote is identified "
                 f"({', '.join(r['name'] for r in used)})")
        lines.append(f"Across {which} the synthetic asymptote rises {ci(slope, scale=1.0)} points per point "
                     "of teacher "
                     f"accuracy ({kind}; approximate interval, see notes).")
    lines.append(_crossover_sentence(rows))
    best = [f"{r['name']}: {r['best']['arm']} (f={r['best']['fraction']:g}"
            + (", within noise of the runner-up" if r["best"]["within_noise"] else "") + ")"
            for r in rows if r["best"]]
    if best:
        lines.append(f"Best mix at the largest N: {'; '.join(best)}.")
    return " ".join(lines)
