"""The teachers report's files: report.md (+ .html), report.json and the asymptote-vs-teacher plot.

The numbers and the verdict come from ``evals.analysis.teachers``.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from distill.artifacts import atomic_write_json, atomic_write_text
from distill.recipe.schema import Report
from evals.analysis.records import TeachersRecords
from evals.analysis.teachers import asymptote_slope, n_range, pts, teacher_rows, verdict
from evals.report.generations_plots import teachers_plot
from evals.report.render import to_html, to_markdown


def write_teachers_report(records: TeachersRecords | Mapping, out_dir: str | Path, cfg: Report | None = None,
                          *,
                          tracker: Any = None, seed: int = 0) -> dict:
    cfg, out_dir, records = cfg or Report(), Path(out_dir), TeachersRecords.of(records)
    rows = teacher_rows(records, level=cfg.confidence, n_boot=cfg.bootstrap, seed=seed)
    slope = asymptote_slope(rows, cfg.confidence, seed=seed)
    text = verdict(rows, slope)
    fig = teachers_plot(out_dir / "teachers.png", rows, records.name or "")
    head = ["teacher", "accuracy [CI]", "synthetic y∞ [CI]", "teacher − y∞ [CI]",
            "synthetic − teacher at largest N [CI]", "human y∞ [CI]",
            "crossover N [CI] (leader)", "best f per N (*: within noise of the runner-up)"]
    body = [[r["name"], pts(r["ceiling_iv"]), pts(r["synthetic_y_inf"]), pts(r["gap"]),
             f"{pts(r['synthetic_at_n']['diff'])} (N={r['synthetic_at_n']['n']:,.0f})"
             if r.get("synthetic_at_n") else "–",
             pts(r["human_y_inf"]),
             f"{n_range(r['crossover']['n'])} ({r['crossover']['leader']})" if r["crossover"]
             else "none in range",
             ", ".join(f"{n:g}: {f:g}{'*' if within else ''}" for n, f, within in r["best_f_per_n"]) or "–"]
            for r in rows]
    notes = (f"Points (accuracy %), {100 * cfg.confidence:.0f}% bootstrap intervals from each teacher's own "
             "data-wall report (linked below). The slope across teachers treats each asymptote's interval as "
             "normal (teachers' bootstraps are not paired), so its interval is approximate.")
    blocks = [("h", 1, f"Teachers report: {records.name or ''}"), ("h", 2, "Verdict"), ("p", text),
              ("h", 2, "Side by side"), ("table", head, body), ("p", notes),
              ("img", "asymptote vs teacher", fig),
              ("list", [f"{t.name}: {t.report}" for t in records.teachers])]
    paths = {"markdown": atomic_write_text(out_dir / "report.md", to_markdown(blocks, out_dir)),
             "html": atomic_write_text(out_dir / "report.html", to_html(blocks, f"teachers: {records.name}"))}
    plain = lambda iv: None if iv is None else {"estimate": iv.estimate, "lower": iv.lower, "upper": iv.upper}
    summary = {"name": records.name, "verdict": text, "asymptote_slope": plain(slope),
               "teachers": [{**{k: v for k, v in r.items() if k != "ceiling_iv"},
                             "ceiling_iv": plain(r["ceiling_iv"])}
                            for r in rows]}
    paths["json"] = atomic_write_json(out_dir / "report.json", summary)
    if tracker is not None:
        tracker.log_images({"report/teachers": fig})
        tracker.summary({"verdict": text})
    return {**summary, "paths": {k: str(v) for k, v in {**paths, "plot": fig}.items()}}
