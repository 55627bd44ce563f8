"""The generations report: score and data diversity against generation, per data policy.

Input: the runs of a ``GenerationsRecords`` (``records.json`` of a generations report step; typed in
``evals.analysis.records``), one ``GenerationRun`` per (policy, generation, seed).

Scores are bootstrapped with ``evals.analysis.uncertainty.resample`` (seeds and eval items, paired across
every run), with the policy as the arm and the generation as N. From the replicates: an interval for each
generation's mean, the least-squares slope of the mean against generation (points per generation),
and the ratio of the last generation's mean to generation 0's. A generation's own mean takes the
per-cell interval (``uncertainty.cell``: t over seeds plus item SE, inside [0, 1]). Diversity has no items:
its
intervals come from resampling seeds (the same draw for every generation of a policy).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evals.analysis.formatting import ci
from evals.analysis.records import GenerationRun
from evals.analysis.uncertainty import Interval, cell, interval, resample

DIVERSITY = ("distinct_ngrams", "distinct_answers")
# generation 0 below this (score fraction, upper end of its interval) is flagged: a curve that starts
# near zero cannot degrade visibly, so "flat" or "falls a little" is a floor effect, not a finding
FLOOR_WARNING = 0.10


@dataclass(frozen=True)
class PolicyCurve:
    policy: str
    generations: tuple[int, ...]
    seeds: int
    score: tuple[Interval, ...]  # mean test score per generation
    slope: Interval  # score points (fractions) per generation, least squares over all generations
    ratio: Interval  # last generation's mean / generation 0's
    diversity: Mapping[str, tuple[Interval, ...]]  # per measure, mean per generation
    diversity_slope: Mapping[str, Interval]


def _slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row of y (B, G) against x (G,)."""
    xc = x - x.mean()
    return (y - y.mean(axis=-1, keepdims=True)) @ xc / float(xc @ xc)


def _seed_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """values (S seeds, G generations) -> (B, G) means over seeds drawn with replacement, one draw per row."""
    pick = rng.integers(0, values.shape[0], size=(n_boot, values.shape[0]))
    return values[pick].mean(axis=1)


def analyze_generations(runs: Sequence[GenerationRun | Mapping[str, Any]], *, n_boot: int = 1000,
                        level: float = 0.9, seed: int = 0) -> dict[str, PolicyCurve]:
    """One curve per policy, all from one paired set of bootstrap replicates."""
    runs = [r for r in map(GenerationRun.model_validate, runs) if r.score is not None]
    if not runs:
        raise ValueError("generations records: no scored run")
    as_run = [{"arm": r.policy, "fraction": 0.0, "n": r.generation, "seed": r.seed, "score": float(r.score),
               "items": r.items} for r in runs]
    reps = resample(as_run, n_boot=n_boot, seed=seed)
    rng = np.random.default_rng(seed + 1)
    out = {}
    for policy in dict.fromkeys(r.policy for r in runs):
        cols = reps.columns(policy)
        gens = np.array(sorted({reps.runs[i].n for i in cols}), dtype=float)
        masks = [np.array([reps.runs[i].n == g for i in cols]) for g in gens]
        obs = np.array([np.mean([reps.runs[i].score for i in cols[m]]) for m in masks])
        means = np.column_stack([reps.scores[:, cols[m]].mean(axis=1) for m in masks])
        dof = reps.dof([policy])
        ratio_obs = obs[-1] / obs[0] if obs[0] > 0 else math.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio_reps = means[:, -1] / means[:, 0]
        mine = [r for r in runs if r.policy == policy]
        seeds = sorted({r.seed for r in mine})
        div, div_slope = {}, {}
        for key in DIVERSITY:
            table = np.full((len(seeds), gens.size), np.nan)
            for r in mine:
                table[seeds.index(r.seed), int(np.flatnonzero(gens == r.generation)[0])] = \
                    float(r.diversity.get(key, math.nan))
            boot = _seed_means(table, n_boot, rng)
            sdof = max(len(seeds) - 1, 1) if len(seeds) > 1 else math.inf
            observed = table.mean(axis=0)
            div[key] = tuple(interval(boot[:, k], observed[k], level, sdof) for k in range(gens.size))
            div_slope[key] = interval(_slopes(gens, boot), float(_slopes(gens, observed[None, :])[0]), level,
                                      sdof)
        out[policy] = PolicyCurve(
            policy, tuple(int(g) for g in gens), len(seeds),
            tuple(cell(reps, cols[m], level) for m in masks),
            interval(_slopes(gens, means), float(_slopes(gens, obs[None, :])[0]), level, dof),
            interval(ratio_reps, ratio_obs, level, dof), div, div_slope)
    return out


def _direction(iv: Interval, unit: str, scale: float = 100.0) -> str:
    if not (math.isfinite(iv.lower) and math.isfinite(iv.upper)):
        return "no interval (one seed and no item resampling?)"
    if iv.upper < 0:
        return f"falls ({ci(iv, scale=scale)} {unit}; the interval is below 0)"
    if iv.lower > 0:
        return f"rises ({ci(iv, scale=scale)} {unit}; the interval is above 0)"
    return f"flat within noise ({ci(iv, scale=scale)} {unit}; the interval spans 0)"


def verdict(curves: Mapping[str, PolicyCurve]) -> tuple[str, dict]:
    """Sentences on what the curves show, and whether they agree with the published direction
    (replace degrades; accumulate stays bounded: Shumailov et al. 2024, Gerstgrasser et al. 2024)."""
    lines, facts = [], {}
    first = next(iter(curves.values())).score[0]
    lines.append(f"Generation 0 (trained on the human pool) scores {ci(first)} points.")
    if first.upper < FLOOR_WARNING:
        lines.append("That is near zero: the students learned little, so no policy can fall far and "
                     "the slopes "
                     "below say little about collapse; train the students longer before reading them.")
    for c in curves.values():
        keep = c.ratio
        change = ("within noise of no change" if keep.contains(1.0) else "a loss beyond noise"
                  if keep.upper < 1
                  else "a gain beyond noise")
        lines.append(f"{c.policy}: the test score {_direction(c.slope, 'points per generation')} over "
                     f"generations {c.generations[0]}–{c.generations[-1]}; the last generation keeps "
                     f"{ci(keep, digits=0)}% of generation 0's score ({change}); distinct answers "
                     f"{_direction(c.diversity_slope['distinct_answers'], 'points per generation')}.")
    rep, acc = curves.get("replace"), curves.get("accumulate")
    if rep is not None and acc is not None:
        degrades = rep.slope.upper < 0
        # bounded: accumulate ends clearly above replace, or keeps generation 0's level while even its
        # worst case stays above replace's estimate (wide intervals that hold both prove nothing)
        bounded = (acc.ratio.lower > rep.ratio.upper
                   or (acc.ratio.upper >= 1.0 and acc.ratio.lower > rep.ratio.estimate))
        facts = {"replace_degrades": bool(degrades), "accumulate_bounded": bool(bounded),
                 "agrees": bool(degrades and bounded)}
        lines.append(
            "Published direction (replace degrades, accumulate stays bounded): "
            + ("agrees." if facts["agrees"] else "does NOT agree here: ")
            + ("" if facts["agrees"] else
               "; ".join(x for x in (None if degrades else "replace's slope interval does not lie below 0",
                                     None if bounded
                                     else "accumulate's last/first ratio is not clearly above "
                                                          "replace's") if x) + "."))
    return " ".join(lines), facts
