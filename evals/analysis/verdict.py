"""The verdict: a few sentences written strictly from the analysis numbers, never hard-coded."""
from __future__ import annotations

import math
from collections.abc import Sequence

from evals.analysis.checks import Claims, Convergence, TeacherComparison, Wall, outside
from evals.analysis.formatting import ci
from evals.analysis.uncertainty import ArmSummary, BestFraction, Crossover, Interval


def _fmt_n(x: float, exact: bool = False) -> str:
    """N for prose: exact for measured sizes, 2 significant figures for estimates."""
    if not math.isfinite(x):
        return "∞"
    if not exact and x >= 100:
        x = float(f"{x:.2g}")
    return f"{round(x):,}"


def _label(arm: str, fraction: float) -> str:
    return f"{arm} (f={fraction:g})" if math.isfinite(fraction) else arm


def _saturation_sentence(s: ArmSummary, with_gap: bool = True) -> str:
    lvl, est = round(100 * s.n_sat.level), s.n_sat.estimate
    span = f"{lvl}% CI {_fmt_n(s.n_sat.lower)}–{_fmt_n(s.n_sat.upper)}"
    pts = 100 * s.eps
    if not s.fit.ok:
        return f"{s.arm}: no curve could be fitted ({s.fit.note})."
    if not s.identified("n_sat"):
        return (f"{s.arm}: where it saturates is not identified by these sizes (the fitted exponent "
                f"{'is at its bound' if math.isfinite(s.exponent.estimate) else 'is undetermined'}).")
    if math.isinf(est):
        text = f"{s.arm} does not saturate on its fitted curve (each doubling keeps adding ≥{pts:g} point)"
    elif est <= 1.0:
        text = f"{s.arm} gains under {pts:g} point per doubling at every N (flat)"
    elif est > s.n_range[1]:
        text = (f"{s.arm} is projected to saturate at N≈{_fmt_n(est)} ({span}), "
                f"beyond the largest N measured ({_fmt_n(s.n_range[1], True)})")
    else:
        text = f"{s.arm} saturates at N≈{_fmt_n(est)} ({span})"
    if with_gap and s.teacher_gap is not None and math.isfinite(s.teacher_gap.estimate) \
            and s.identified("teacher_gap"):
        gap = 100 * s.teacher_gap.estimate
        text += f", {abs(gap):.1f} points {'below' if gap >= 0 else 'above'} the teacher"
    return text + "."


def _best_sentence(best: Sequence[BestFraction]) -> str | None:
    # an N where one arm alone was measured says nothing about which arm is best
    best = sorted((b for b in best if b.runner_up is not None), key=lambda b: b.n)
    if not best:
        return None
    top = best[-1]
    start = len(best) - 1
    while start > 0 and best[start - 1].arm == top.arm:
        start -= 1
    who = _label(top.arm, top.fraction)
    if len(best) == 1:
        return f"{who} is best at N={_fmt_n(top.n, True)}."
    if start == 0:
        return f"{who} is best at every N measured ({_fmt_n(best[0].n, True)}–{_fmt_n(top.n, True)})."
    return f"{who} is best from N≥{_fmt_n(best[start].n, True)}."


def _crossover_sentence(crossovers: Sequence[Crossover]) -> str | None:
    found = sorted((c for c in crossovers if math.isfinite(c.n.estimate)), key=lambda c: c.n.estimate)[:2]
    parts = []
    for c in found:
        lvl = round(100 * c.n.level)
        text = (f"{c.leader} overtakes {c.trailer} at N≈{_fmt_n(c.n.estimate)} "
                f"({lvl}% CI {_fmt_n(c.n.lower)}–{_fmt_n(c.n.upper)})")
        parts.append(text + ("" if c.data_agrees else ", which the per-N means do not clearly confirm"))
    return "; ".join(parts) + "." if parts else None


def _lead_sentence(best: Sequence[BestFraction]) -> str | None:
    """The leads that are outside seed noise, with their intervals (the tied ones: _noise_sentence)."""
    clear = [b for b in sorted(best, key=lambda b: b.n) if not b.within_noise and b.diff is not None]
    if not clear:
        return None
    parts = [f"{b.arm} leads {b.runner_up} by {ci(b.diff, signed=True)} at N={_fmt_n(b.n, True)}"
             for b in clear]
    return f"Outside seed noise: {'; '.join(parts)}."


def _noise_sentence(best: Sequence[BestFraction]) -> str | None:
    tied = [b for b in sorted(best, key=lambda b: b.n) if b.within_noise and b.runner_up is not None]
    if not tied:
        return None
    parts = [f"{b.arm} vs {b.runner_up} at N={_fmt_n(b.n, True)}" for b in tied[:3]]
    more = f" (and {len(tied) - 3} more)" if len(tied) > 3 else ""
    verb = "is" if len(parts) == 1 else "are"
    return f"{' and '.join(parts)}{more} {verb} within seed noise."


def _noise_tag(iv: Interval) -> str:
    return "outside seed noise" if outside(iv) else "within seed noise"


def _teacher_sentence(c: TeacherComparison, s: ArmSummary) -> str:
    lvl = round(100 * c.diff.level)
    where = (f"at N={_fmt_n(c.n, True)} it scores {ci(c.diff, signed=True)} points against the teacher "
             f"({lvl}% CI, {_noise_tag(c.diff)})")
    if c.asymptote_gap is not None:
        where += (f"; its fitted asymptote is {ci(c.asymptote_gap, signed=True)} "
                  f"({_noise_tag(c.asymptote_gap)})")
    meaning = {"at": "it plateaus at the teacher: the teacher, not the data size, is its ceiling",
               "below": "it plateaus below the teacher: the student's capacity or training limits it, "
                        "not the teacher",
               "above": "it goes past the teacher",
               "not identified": "where it plateaus is not identified by these sizes"}[c.plateau]
    return f"{_label(s.arm, s.fraction)}: {meaning} ({where})."


def _wall_sentence(w: Wall) -> str:
    verdict = ("the human pool binds: gains past it are smaller, outside seed noise" if w.binds
               else "the drop past the pool is within seed noise: the wall is not shown")
    return (f"{w.arm} gains {ci(w.before, signed=True)} points per doubling of N up to its pool of "
            f"{_fmt_n(w.pool, True)} and {ci(w.after, signed=True)} past it (repeats); {verdict}.")


def _convergence_sentence(checks: Sequence[Convergence]) -> str | None:
    if not checks:
        return None
    bad = [c for c in checks if not c.converged]
    parts = ", ".join(f"{c.arm} at N={_fmt_n(c.n, True)} {100 * c.shift:+.1f} (noise {100 * c.noise:.1f})"
                      for c in checks)
    factor = f"{checks[0].factor:g}"
    if any(c.undertrained for c in bad):
        return (f"Convergence check FAILED: {factor}x the training budget moved {parts} points; the students "
                f"are undertrained and the curves above measure training, not data.")
    if bad:
        fell = " and ".join(f"{c.arm} at N={_fmt_n(c.n, True)}" for c in bad)
        return (f"Convergence check: {factor}x the training budget moved {parts} points; no score "
                "rose by its "
                f"noise (the budget is not short), but {fell} fell by its noise or more with more training.")
    return f"Convergence check: {factor}x the training budget moved {parts} points, less than noise."


def claims_verdict(summaries: Sequence[ArmSummary], best: Sequence[BestFraction],
                   crossovers: Sequence[Crossover],
                   found: Claims) -> str:
    """The full verdict: the teacher plateau of every f = 1 arm, the wall, the best arm per N with its
    noise label, crossovers, the convergence check, and which score the claims rest on."""
    by_arm = {s.arm: s for s in summaries}
    sentences = [f"Claims rest on {found.score}; median seed SD per cell {100 * found.median_sd:.1f} points."]
    # the teacher sentences below compare with the teacher; the saturation sentence says only where
    sentences += [_saturation_sentence(s, with_gap=False) for s in summaries if s.fraction == 1.0][:1]
    sentences += [_teacher_sentence(c, by_arm[c.arm]) for c in found.teacher if by_arm[c.arm].fraction == 1.0]
    sentences += [_wall_sentence(w) for w in found.walls]
    more = (_best_sentence(best), _lead_sentence(best), _crossover_sentence(crossovers),
            _noise_sentence(best),
            _convergence_sentence(found.convergence))
    return " ".join(sentences + [s for s in more if s])


def verdict(summaries: Sequence[ArmSummary], best: Sequence[BestFraction] = (),
            crossovers: Sequence[Crossover] = (), *, max_sentences: int = 4) -> str:
    """A few plain sentences built only from the numbers passed in.

    Order: saturation of the synthetic-only arm (f = 1; else the arm with the smallest N_sat), the
    best fraction by N, crossovers, comparisons within seed noise; the asymptote's PGR fills in when
    fewer than two of those apply.
    """
    summaries = list(summaries)
    sentences = []
    if summaries:
        synth = [s for s in summaries if s.fraction == 1.0]
        pick = synth[0] if synth else min(summaries, key=lambda s: (math.isnan(s.n_sat.estimate),
                                                                     s.n_sat.estimate))
        sentences.append(_saturation_sentence(pick))
    more = (_best_sentence(best), _crossover_sentence(crossovers), _noise_sentence(best))
    sentences += [s for s in more if s]
    with_pgr = [s for s in summaries if s.pgr_inf is not None and math.isfinite(s.pgr_inf.estimate)
                and s.identified("pgr_inf")]
    if len(sentences) < 2 and with_pgr:
        s = max(with_pgr, key=lambda s: s.pgr_inf.estimate)
        p = s.pgr_inf
        sentences.append(f"{s.arm}'s asymptote recovers {100 * p.estimate:.0f}% of the floor-to-teacher gap "
                         f"({round(100 * p.level)}% CI {100 * p.lower:.0f}–{100 * p.upper:.0f}%).")
    return " ".join(sentences[:max_sentences])
