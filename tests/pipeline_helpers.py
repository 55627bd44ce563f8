"""Shared by the pipeline tests: the tiny recipe made tinier, and a look at which steps ran."""
from __future__ import annotations

from pathlib import Path

from distill.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["mixes.sizes=[50, 100, 200]", "mixes.seeds=[0, 1]",
         "mixes.arms=[{name: human, fraction: 0.0}, {name: synthetic, fraction: 1.0}]",
         "eval.tasks=[distill_arith]", "report.bootstrap=50"]


def later_wins(defaults: list[str], overrides: list[str]) -> list[str]:
    """``defaults`` less the keys ``overrides`` set, then ``overrides`` (the loader refuses a key set
    twice)."""
    keys = {o.split("=", 1)[0] for o in overrides}
    return [o for o in defaults if o.split("=", 1)[0] not in keys] + list(overrides)


def tiny_recipe(out: Path, *overrides: str):
    return load_recipe(ROOT / "recipes/tiny.yaml", [f"output_dir={out}", *later_wins(SMALL, list(overrides))])


def done_markers(run_dir: Path, cache: Path) -> dict[str, float]:
    """{step id: mtime of its DONE marker} over the run folder and the shared cache."""
    markers = list(run_dir.glob("steps/*/DONE")) + list(cache.glob("steps/*/DONE"))
    return {p.parent.name: p.stat().st_mtime_ns for p in markers}
