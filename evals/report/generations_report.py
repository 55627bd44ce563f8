"""The generations report's files: report.md (+ .html), report.json and two PNGs (score and diversity
against generation). The numbers and the verdict come from ``evals.analysis.generations``.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from distill.artifacts import atomic_write_json, atomic_write_text
from distill.recipe.schema import Report
from evals.analysis.formatting import ci
from evals.analysis.generations import PolicyCurve, analyze_generations, verdict
from evals.analysis.records import GenerationsRecords
from evals.analysis.uncertainty import Interval
from evals.report import generations_plots
from evals.report.render import to_html, to_markdown


def write_generations_report(records: GenerationsRecords | Mapping, out_dir: str | Path,
                             cfg: Report | None = None, *,
                             tracker: Any = None, seed: int = 0) -> dict:
    """report.md (+ report.html), report.json and two PNGs (score and diversity vs generation)."""
    cfg, out_dir, records = cfg or Report(), Path(out_dir), GenerationsRecords.of(records)
    curves = analyze_generations(records.runs, n_boot=cfg.bootstrap, level=cfg.confidence, seed=seed)
    text, facts = verdict(curves)
    figs = {"score": generations_plots.score_plot(out_dir / "generations_score.png", curves,
                                                  records.name or ""),
            "diversity": generations_plots.diversity_plot(out_dir / "generations_diversity.png", curves,
                                                          records.name or "")}
    blocks = _blocks(records, curves, text, figs, cfg)
    paths = {"markdown": atomic_write_text(out_dir / "report.md", to_markdown(blocks, out_dir)),
             "html": atomic_write_text(out_dir / "report.html",
                                       to_html(blocks, f"generations: {records.name}"))}
    summary = {"name": records.name, "verdict": text, **facts,
               "policies": {p: _plain_curve(c) for p, c in curves.items()},
               "settings": {"bootstrap": cfg.bootstrap, "confidence": cfg.confidence, "seed": seed}}
    paths["json"] = atomic_write_json(out_dir / "report.json", summary)
    if tracker is not None:
        tracker.log_images({f"report/generations_{k}": v for k, v in figs.items()})
        tracker.summary({"verdict": text, **{f"{p}/slope": c.slope.estimate for p, c in curves.items()},
                         **{f"{p}/ratio": c.ratio.estimate for p, c in curves.items()}})
    return {**summary, "paths": {k: str(v) for k, v in {**paths, **figs}.items()}}


def _iv(iv: Interval) -> dict:
    return {"estimate": iv.estimate, "lower": iv.lower, "upper": iv.upper, "level": iv.level}


def _plain_curve(c: PolicyCurve) -> dict:
    return {"generations": list(c.generations), "seeds": c.seeds, "score": [_iv(i) for i in c.score],
            "slope": _iv(c.slope), "ratio_last_first": _iv(c.ratio),
            "diversity": {k: [_iv(i) for i in v] for k, v in c.diversity.items()},
            "diversity_slope": {k: _iv(v) for k, v in c.diversity_slope.items()}}


def _blocks(records: GenerationsRecords, curves: Mapping[str, PolicyCurve], text: str, figs: dict,
            cfg: Report) -> list[tuple]:
    head = ["policy", "slope (points/generation) [CI]", "last / generation 0 (%) [CI]", "seeds",
            "distinct answers slope (points/gen) [CI]"]
    summary = [[c.policy, ci(c.slope), ci(c.ratio, digits=0), str(c.seeds),
                ci(c.diversity_slope["distinct_answers"])] for c in curves.values()]
    per_gen = [[c.policy, str(g), ci(c.score[k]), ci(c.diversity["distinct_ngrams"][k]),
                ci(c.diversity["distinct_answers"][k])] for c in curves.values()
                for k, g in enumerate(c.generations)]
    notes = ("Scores on the world's true (human-distribution) test split, in points; "
             f"{100 * cfg.confidence:.0f}% "
             f"bootstrap intervals ({cfg.bootstrap} replicates over seeds and test items, widened for "
             "few seeds). "
             "Diversity of the rows each generation trained on, on equal-size samples: distinct token "
             "n-grams / "
             "all n-grams, and distinct final answers / rows (both in %); intervals over seeds only.")
    return [("h", 1, f"Generations report: {records.name or ''}"), ("h", 2, "Verdict"), ("p", text),
            ("h", 2, "Per policy"), ("table", head, summary), ("img", "score vs generation", figs["score"]),
            ("h", 2, "Per generation"),
            ("table",
             ["policy", "generation", "score [CI]", "distinct n-grams % [CI]", "distinct answers % [CI]"],
             per_gen), ("p", notes), ("img", "diversity vs generation", figs["diversity"])]
