"""Each stage of the streaming merge survives SIGKILL: rerun it and the published bytes are the same.

Run: pytest tests/integration/test_dedup_resume.py -q      (about a minute on 2 cores)
A 3,000-row generation (4 shards, planted copies) is merged once without interruption. Then, for each
stage (signatures, candidate pairs, cluster, filter, publish), a fresh Python process runs the merge and
SIGKILLs itself inside that stage, right after a chosen call (outputs half-written, nothing renamed yet);
a rerun in this process must finish with Arrow files, content hashes and filter report identical to the
uninterrupted run's.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from distill.generation.pipeline import merge_and_filter
from distill.generation.workload import rows, write_generation
from distill.recipe.schema import Filters

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FILTERS = {"verify": False, "decontaminate_ngram": 8, "near_dedup_threshold": 0.85}
CHILD = textwrap.dedent("""
    import json, os, signal, sys
    from distill.generation import dedup, merge, provenance
    from distill.generation.pipeline import merge_and_filter
    from distill.recipe.schema import Filters

    shards, out, owner, name, calls, filters, tests = json.loads(sys.argv[1])
    holder = {"dedup": dedup, "merge": merge, "SourceWriter": provenance.SourceWriter}[owner]
    original, seen = getattr(holder, name), [0]

    def killed_after(*args, **kwargs):
        result = original(*args, **kwargs)
        seen[0] += 1
        if seen[0] == calls:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(holder, name, killed_after)
    merge_and_filter(shards, out, filters=Filters(**filters), test_prompts=tests)
""")
# (stage, where to kill: the call after which the process dies)
KILLS = [("signatures", "dedup", "_write_batch", 2), ("candidates", "dedup", "_confirmed_band_pairs", 3),
         ("cluster", "dedup", "_greedy_near", 1), ("filter", "merge", "_codes", 2),
         ("publish", "SourceWriter", "add", 5)]


def _published(out: Path) -> dict:
    report = json.loads((out / "report.json").read_text())
    arrow = {name: (out / name / "data" / "data-00000-of-00001.arrow").read_bytes()
             for name in report["sources"]}
    return {"filters": report["filters"], "arrow": arrow,
            "hashes": {k: v["content_hash"] for k, v in report["sources"].items()}}


@pytest.mark.parametrize("stage,owner,name,calls", KILLS, ids=[k[0] for k in KILLS])
def test_sigkill_in_a_stage_then_rerun_gives_identical_output(tmp_path_factory, stage, owner, name, calls):
    base = tmp_path_factory.getbasetemp() / "dedup-resume"
    shards = [str(p) for p in write_generation(base / "gen", 3000, shards=4, seed=7, chunk_size=500)] \
        if not (base / "gen").exists() else sorted(str(p) for p in (base / "gen" / "shards").iterdir())
    tests = [p for _, p, _ in rows(20, seed=11)]
    if not (base / "clean" / "report.json").exists():
        merge_and_filter(shards, base / "clean", filters=Filters(**FILTERS), test_prompts=tests)
    out = tmp_path_factory.mktemp(stage)
    args = json.dumps([shards, str(out), owner, name, calls, FILTERS, tests])
    done = subprocess.run([sys.executable, "-c", CHILD, args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == -9, f"the process was not killed in {stage}: {done.stderr[-2000:]}"
    assert not (out / "report.json").exists()
    merge_and_filter(shards, out, filters=Filters(**FILTERS), test_prompts=tests)
    assert _published(out) == _published(base / "clean")
