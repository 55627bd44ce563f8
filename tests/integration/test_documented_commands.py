"""Every command the documentation gives runs: each command block and inline command of README.md,
each "Launch:" line in a shipped recipe's header and each "Run:" line of a benchmark. Commands that
would need a GPU, a hub or a cluster run with tiny overrides or as a dry run (noted per command);
the demo runs for real at toy size, then `distill status` and the README's `lm_eval` command are
run on its output. A command without a way to run here fails the first test.
Run: pytest tests/integration/test_documented_commands.py -q"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from distill.cli import main, shipped_recipes

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent
TEST_SIZE = 37  # the demo's test split here; lm-eval's default world would give 500
# the demo at toy size; its teacher is the one bench/sweep.py builds from tiny.yaml with these overrides
# (same world apart from the human pool, same build), so the two share one cached teacher
DEMO_TINY = ["teacher.build.arch={hidden_size: 64, num_layers: 2, num_heads: 2}",
             "teacher.build.corpus_size=2000",
             "teacher.build.max_steps=20", "teacher.build.eval_every=10", "teacher.build.eval_size=20",
             "teacher.build.batch_size=32", "teacher.build.lr=0.003", "teacher.build.target_accuracy=0.9",
             "student.arch={hidden_size: 32, num_layers: 1, num_heads: 1}", "generation.num_prompts=60",
             "generation.max_new_tokens=24", "mixes.sizes=[50]", "mixes.seeds=[0]",
             "mixes.arms=[{name: human, fraction: 0.0}, {name: synthetic, fraction: 1.0}]",
             f"world.test_size={TEST_SIZE}", "train.tokens=4096", "train.global_batch_size=8",
             "train.micro_batch_size=8", "eval.tasks=[distill_arith]", "report.bootstrap=50",
             "tracking.wandb.mode=disabled", "launcher.workers=1"]
SKIPPED = {  # commands that set up the machine or are the test suite itself (CI runs them: .ci/run)
    r"^python3 -m venv ": "creates the environment these tests run in",
    r"distill/install\.py": "the install .ci/run performs",
    r"^\.venv/bin/python -m pytest": "the test suite itself (.ci/run runs exactly this)",
    r"^(sudo )?bash slurm/local/start\.sh": "starts the one-node Slurm .ci/run starts",
    r"^bash \.ci/vllm-env\.sh": "builds the separate vLLM environment the vLLM tests use",
    r"^bash \.ci/labelstudio-env\.sh": "builds the separate Label Studio environment (.ci/run runs it)",
    r"bin/label-studio start ": "a server: tests/integration/test_labelstudio_server.py starts it as written",
    r"^\.venv/bin/python -m distill\.human\.champ ": "tests/unit/test_champ_import.py runs it as written",
}


def _clean(line: str) -> str:
    return re.sub(r"\s+#.*$", "", line).strip()


def readme_commands() -> list[str]:
    out = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", README, re.DOTALL):
        if lang != "bash":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            if _clean(line) and not line.lstrip().startswith("#"):
                out += [c.strip() for c in _clean(line).split("&&")]
    out += re.findall(r"`((?:distill|sudo bash|bash|lm_eval|\.venv/bin/\w+) [^`]*)`", README)
    return [" ".join(c.split()) for c in out if "..." not in c]


def launch_commands() -> list[str]:
    """The `distill run` lines of every shipped recipe's header; `(or: --flag)` gives a second one."""
    out = []
    for path in shipped_recipes():
        header = [ln for ln in path.read_text().splitlines() if ln.startswith("#")]
        for line in header:
            found = re.search(r"(distill run \S+(?: [^(#]*?)?)\s*(?:\((.*)\))?$", line)
            if not found:
                continue
            cmd = " ".join(found.group(1).replace("<yours>", "gpu").split())
            out.append(cmd)
            alt = re.match(r"or: (--\S+(?: \S+)*)", found.group(2) or "")
            if alt:
                out.append(f"{cmd} {alt.group(1)}")
    return out


def bench_commands() -> list[str]:
    out = []
    for path in sorted((ROOT / "bench").glob("*.py")):
        doc = path.read_text().split('"""')[1]
        block = doc[doc.index("Run:"):].split("\n\n")[0] if "Run:" in doc else ""
        for line in block.replace("Run:", "").splitlines():
            cmd = re.sub(r"\s{2,}\(.*\)$", "", line).strip()
            if cmd.startswith("python bench/"):
                out.append(re.sub(r"\s*\[[^\]]*\]", "", cmd))  # [optional arguments] left out
    return out


def _kind(cmd: str) -> str:
    if any(re.search(p, cmd) for p in SKIPPED):
        return "skipped"
    # named in prose
    if re.fullmatch(r"distill (run|generate|train|eval|status|validate|report|serve|compare|coverage)", cmd):
        return "mention"
    for pattern, kind in ((r"^(\.venv/bin/)?distill run recipes/demo\.yaml$", "demo"),
                          (r"^lm_eval ", "lm_eval"),
                          (r"^distill status ", "status"), (r"^distill (run|validate) ", "distill"),
                          (r"^python bench/", "bench")):
        if re.search(pattern, cmd):
            return kind
    return "unknown"


@pytest.mark.unit
def test_every_documented_command_is_found_and_has_a_way_to_run():
    readme, launch, bench = readme_commands(), launch_commands(), bench_commands()
    assert len(readme) >= 8 and len(launch) >= 5 and len(bench) >= 3, (readme, launch, bench)
    unknown = [c for c in readme + launch + bench if _kind(c) == "unknown"]
    assert not unknown, f"documented commands no test runs: {unknown}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder outside the checkout that looks like one to relative paths (recipes/, evals/)."""
    work = tmp_path_factory.mktemp("docs")
    for name in ("recipes", "evals", "bench"):
        (work / name).symlink_to(ROOT / name)
    return work


def _env(work: Path) -> dict:
    path = ":".join(p for p in os.environ.get("PATH", "").split(":") if Path(p).resolve() != BIN.resolve())
    return {**os.environ, "DISTILL_CACHE": str(work / "cache"), "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "PATH": path}  # the venv is not activated: commands are found through their own paths


@pytest.mark.integration
@pytest.mark.parametrize("cmd",
                         sorted({c for c in readme_commands() + launch_commands() if _kind(c) == "distill"}))
def test_distill_commands_as_written(cmd, workdir, monkeypatch, capsys):
    """Run exactly as written (in this process, from the folder holding recipes/); a real run or a
    submission needs the hub, GPUs or a cluster, so it runs as `--dry-run` (which writes nothing)."""
    argv = shlex.split(cmd)[1:]
    if argv[0] == "run" and "--dry-run" not in argv:
        argv.append("--dry-run")
    monkeypatch.chdir(workdir)
    assert main(argv) == 0, capsys.readouterr().err
    assert not (workdir / "runs").exists(), "a dry run or validate wrote a run folder"


@pytest.fixture(scope="module")
def demo(workdir):
    """The README's demo command, with tiny overrides, exactly as a user runs it (no activation)."""
    cmd = next(c for c in readme_commands() if _kind(c) == "demo")
    argv = [str(ROOT / ".venv/bin/distill") if cmd.startswith(".venv/") else str(BIN / "distill"),
            *shlex.split(cmd)[1:], *DEMO_TINY]
    done = subprocess.run(argv, cwd=workdir, env=_env(workdir), capture_output=True, text=True, timeout=900,
                          check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "fatal: not a git repository" not in done.stdout + done.stderr
    return workdir / "runs" / "demo"


@pytest.mark.integration
@pytest.mark.timeout(2400)  # the toy demo plus lm_eval take ~2 min on 2 idle cores, 15 on a loaded machine
def test_readme_status_and_lm_eval_on_the_demo(demo, workdir):
    status = next(c for c in readme_commands() if _kind(c) == "status")
    out = subprocess.run([str(BIN / "distill"), "status", str(demo)], cwd=workdir, env=_env(workdir),
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "done" in out.stdout, (status, out.stderr)

    train = next(demo.glob("steps/train-*"))
    cmd = next(c for c in readme_commands() if _kind(c) == "lm_eval").replace("train-<id>", train.name)
    out_dir = workdir / "lm_eval_out"  # added to read its results back: which problems it scored
    argv = [str(BIN / "lm_eval"), *shlex.split(cmd)[1:], "--output_path", str(out_dir), "--log_samples"]
    done = subprocess.run(argv, cwd=workdir, env=_env(workdir), capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(out_dir.rglob("results_*.json")).read_text())
    assert result["n-samples"]["distill_arith"]["effective"] == TEST_SIZE, "lm_eval scored another test split"
    samples = [json.loads(ln)
               for ln in next(out_dir.rglob("samples_distill_arith_*.jsonl")).read_text().splitlines()]
    ev = next(e for e in demo.glob("steps/eval-*") if (e / "meta.json").exists()
              and json.loads((e / "meta.json").read_text())["step"]["deps"] == [train.name])
    ours = json.loads((ev / "results.json").read_text())["tasks"]["distill_arith"]["items"]
    assert (sorted((s["doc_id"], s["target"]) for s in samples)
            == sorted((i["doc_id"], i["target"]) for i in ours))


BENCH_TINY = {
    "bench/sweep.py": ["--recipe", "recipes/tiny.yaml", *DEMO_TINY],
    "bench/generate.py": ["--prompts", "8", "--max-new-tokens", "8", "--batch-sizes", "4"],
    "bench/mix_scale.py": ["--examples", "2000", "--human", "300", "--compare", "500", "--steps", "2",
                           "--rows", "4",
                           "--seq-len", "64"],
    "bench/merge.py": ["--sizes", "2000", "--old-max", "2000"],
    "bench/train.py": ["--steps", "2", "--rounds", "1", "--hidden", "64", "--layers", "1", "--examples", "64",
                       "--rows", "4", "--seq-len", "64"],
}


def _longest_per_script(commands: list[str]) -> list[str]:
    """One run per benchmark: its longest documented line (every flag the docs use is parsed); the
    toy-size flags after it replace the values, so shorter lines would run the same thing again."""
    by_script: dict[str, str] = {}
    for cmd in commands:
        script = cmd.split()[1]
        if len(cmd) > len(by_script.get(script, "")):
            by_script[script] = cmd
    return sorted(by_script.values())


@pytest.mark.integration
@pytest.mark.parametrize("cmd", _longest_per_script(bench_commands()))
def test_bench_run_lines(cmd, workdir):
    """With the project's interpreter, not activated (lm_eval is not on PATH), at toy size; run after
    the demo (file order), whose cached teacher bench/sweep.py reuses."""
    script = shlex.split(cmd)[1]
    argv = [sys.executable, *shlex.split(cmd)[1:], *BENCH_TINY[script]]
    done = subprocess.run(argv, cwd=workdir, env=_env(workdir), capture_output=True, text=True, timeout=900,
                          check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


@pytest.mark.unit
def test_the_cli_synopsis_matches_the_parser():
    """README's CLI block (a synopsis, not runnable as written): every subcommand and flag it shows exists."""
    from distill.cli import build_parser

    block = next(body for lang, body in re.findall(r"```(\w*)\n(.*?)```", README, re.DOTALL)
                 if not lang and "distill run RECIPE" in body)
    subparsers = next(a for a in build_parser()._actions if a.choices and "run" in a.choices).choices
    lines = [ln.split("#")[0].split() for ln in block.splitlines() if ln.startswith("distill ")]
    assert len(lines) >= 6
    for words in lines:
        for name in words[1].split("|"):
            # its own parser (generation/backends/serve.py) reached by `distill serve --help`
            if name == "serve":
                continue
            assert name in subparsers, f"README shows `distill {name}`, the CLI has no such command"
            flags = {f for a in subparsers[name]._actions for f in a.option_strings}
            shown = {w.strip("[]").split("|")[0] for w in words if w.strip("[]").startswith("--")}
            assert shown <= flags, f"`distill {name}`: README shows {sorted(shown - flags)}, not in the CLI"
