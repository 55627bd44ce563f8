"""The README's promises: every path it (and docs/architecture.md) names exists, and CI runs exactly
its test command.
Run: pytest tests/unit/test_readme.py -q"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
ARCHITECTURE = (ROOT / "docs/architecture.md").read_text()
PATH = re.compile(r"(?<![\w/.~-])((?:distill|evals|recipes|slurm|tests|bench|docs|\.ci)/[\w./-]*[\w/])")


def _named_paths(text: str = README) -> list[str]:
    found = set()
    for match in PATH.finditer(text):
        path = match.group(1).rstrip(".")
        if "<" in path or "*" in path or "{" in path:
            continue
        found.add(path)
    return sorted(found)


def test_readme_names_paths_and_they_exist():
    paths = _named_paths()
    assert len(paths) >= 10, paths
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"README names paths that do not exist: {missing}"
    assert "docs/architecture.md" in paths


def test_architecture_names_paths_and_they_exist():
    paths = _named_paths(ARCHITECTURE)
    assert len(paths) >= 20, paths
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_ci_runs_exactly_the_readme_test_command():
    block = re.search(r"```bash\n# 1\..*?\n(.*?)\n\n# 2\..*?\n(.*?)\n```", README, re.DOTALL)
    assert block, "README lost its two set-up commands"
    install_and_demo, tests = block.group(1).strip(), block.group(2).strip()
    assert "distill/install.py" in install_and_demo and "distill run recipes/demo.yaml" in install_and_demo
    ci = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    assert ci[-1] == tests, f".ci/run ends with {ci[-1]!r}, README says {tests!r}"
