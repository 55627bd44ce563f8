"""The teachers report's files: report.md (+ .html), report.json and the asymptote-vs-teacher plot.

The numbers and the verdict come from ``evals.analysis.teachers``.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from distill.artifacts import atomic_write_json, atomic_write_text
from distill.recipe.schema import Report
from evals.analysis.formatting import ci
from evals.analysis.records import TeachersRecords
from evals.analysis.teachers import as_interval, asymptote_slope, teacher_rows, verdict
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
    body = [_row(r) for r in rows]
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


def _row(r: Mapping) -> list[str]:
    """One teacher's row of the side-by-side table."""
    at, cross = r.get("synthetic_at_n"), r["crossover"]
    return [r["name"], ci(r["ceiling_iv"]), ci(as_interval(r["synthetic_y_inf"])), ci(as_interval(r["gap"])),
            f"{ci(as_interval(at['diff']))} (N={at['n']:,.0f})" if at else "–",
            ci(as_interval(r["human_y_inf"])),
            (f"{ci(as_interval(cross['n']), scale=1.0, digits=0, grouped=True)} ({cross['leader']})" if cross
             else "none in range"),
            ", ".join(f"{n:g}: {f:g}{'*' if within else ''}" for n, f, within in r["best_f_per_n"]) or "–"]
