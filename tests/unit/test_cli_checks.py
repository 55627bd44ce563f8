"""The command line as a new user meets it: overrides anywhere, problems found before any work (one
line, exit 2, nothing written), dry runs that write nothing, status piped into head.
Run: pytest tests/unit/test_cli_checks.py -q"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from distill.cli import main, parse_args
from distill.pipeline.run import prepare_run
from distill.recipe import load_recipe

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "recipes/tiny.yaml")


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overrides_after_launcher_and_dry_run_are_overrides():
    args = parse_args(["run", "recipes/gsm8k/hybrid.yaml", "a.b=1", "--launcher", "slurm", "--dry-run",
                       "launcher.slurm.train.partition=gpu", "launcher.slurm.train.account=myproject"])
    assert args.launcher == "slurm" and args.dry_run
    assert (args.overrides
            == ["a.b=1", "launcher.slurm.train.partition=gpu", "launcher.slurm.train.account=myproject"])
    with pytest.raises(SystemExit):
        parse_args(["status", "runs/x", "extra=1"])
    with pytest.raises(SystemExit):
        parse_args(["run", TINY, "--launcher", "slurm", "--bogus"])


@pytest.mark.parametrize("override, fragment", [
    ("eval.include_path=/nonexistent/tasks", "eval.include_path='/nonexistent/tasks'"),
    ("student.model=/nonexistent/model", "student.model='/nonexistent/model'"),
    ("teacher.model=./no/such/model", "teacher.model='./no/such/model'"),
    ("train.accelerate_config=/nonexistent/zero2.yaml", "train.accelerate_config=/nonexistent/zero2.yaml"),
])
def test_validate_catches_what_would_fail_later(override, fragment, capsys, tmp_path):
    assert main(["validate", TINY, f"output_dir={tmp_path}", override]) == 2
    err = _one_error_line(capsys)
    assert "recipes/tiny.yaml" in err and fragment in err
    assert not any(tmp_path.iterdir())
    assert main(["run", TINY, f"output_dir={tmp_path}", override]) == 2  # before anything is written
    assert not any(tmp_path.iterdir())


def test_a_model_folder_needs_a_config(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    assert main(["validate", TINY, f"student.model={tmp_path / 'm'}"]) == 2
    assert "no config.json" in _one_error_line(capsys)


def test_missing_local_data_file_is_named(tmp_path, capsys):
    refs = [f"world.{s}={{path: json, data_files: {tmp_path / s}.jsonl}}"
            for s in ("human", "prompts", "test")]
    (tmp_path / "prompts.jsonl").write_text("{}\n")
    (tmp_path / "test.jsonl").write_text("{}\n")
    assert main(["validate", "gsm8k/hybrid", *refs, "eval.tasks=[distill_arith]"]) == 2
    err = _one_error_line(capsys)
    assert "world.human.data_files" in err and str(tmp_path / "human.jsonl") in err


def test_output_dir_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["run", TINY, f"output_dir={tmp_path / 'file' / 'runs'}"]) == 2
    err = _one_error_line(capsys)
    assert "output_dir=" in err and "is a file" in err


@pytest.mark.parametrize("content, fragment", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text recipe file (byte 0x89"),
    (b"", "the recipe is empty"),
    (b"# only a comment\n", "the recipe is empty"),
    (b"name: a\nmixes: {arms: [{name: h, fraction: 0}], sizes: [1]}\ntrain: {tokens: 1}\nname: b\n",
     "line 4 not valid YAML (duplicate key 'name' (first written at line 1))"),
    (b"name: a\nmixes: {arms: [{name: h, fraction: 0}], sizes: [1], sizes: [2]}\ntrain: {tokens: 1}\n",
     "duplicate key 'sizes'"),
])
def test_unreadable_recipes_are_named(content, fragment, tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(content)
    assert main(["validate", str(path)]) == 2
    err = _one_error_line(capsys)
    assert str(path) in err and fragment in err


def test_yaml_merge_keys_may_still_override():
    from distill.recipe.loading import load_yaml_text

    assert load_yaml_text("a: &x {b: 1, c: 2}\nd: {<<: *x, b: 3}\n", "t")["d"] == {"b": 3, "c": 2}


def test_a_folder_given_as_recipe(tmp_path, capsys):
    assert main(["validate", str(tmp_path)]) == 2
    assert "is a folder" in _one_error_line(capsys)


@pytest.mark.parametrize("launcher", ["local", "slurm"])
def test_dry_run_writes_nothing_into_an_existing_run(launcher, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    run_dir, _, _ = prepare_run(load_recipe(TINY, [f"output_dir={tmp_path}"]))
    before = _snapshot(run_dir)
    assert (main(["run", TINY, "--dry-run", "--launcher", launcher, f"output_dir={tmp_path}", "train.lr=0.1"])
            == 0)
    assert _snapshot(run_dir) == before, "the dry run changed the run folder"
    out = capsys.readouterr().out
    assert "nothing is written" in out
    if launcher == "slurm":
        scripts = Path(out.split("scripts written to ")[1].split(";")[0])
        assert scripts.is_dir() and run_dir not in scripts.parents and list(scripts.glob("*.sbatch"))


def test_status_into_head_exits_quietly(tmp_path):
    env = {**os.environ, "DISTILL_CACHE": str(tmp_path / "cache")}
    recipe = load_recipe(TINY, [f"output_dir={tmp_path}"])
    os.environ["DISTILL_CACHE"], old = str(tmp_path / "cache"), os.environ.get("DISTILL_CACHE")
    try:
        run_dir, steps, _ = prepare_run(recipe)
    finally:
        os.environ.pop("DISTILL_CACHE") if old is None else os.environ.update(DISTILL_CACHE=old)
    assert len(steps) > 30
    cmd = f"{sys.executable} -m distill.cli status {run_dir} | head -n 2"
    out = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=False, capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert len(out.stdout.splitlines()) == 2
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, out.stderr


def test_status_shows_the_cause_of_a_failure(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    run_dir, steps, cache = prepare_run(load_recipe(TINY, [f"output_dir={tmp_path}"]))
    human = next(s for s in steps if s.kind == "human")
    folder = human.folder(run_dir, cache)
    folder.mkdir(parents=True)
    (folder / "error.txt").write_text("ValueError: /data/h.jsonl line 7: not a JSON object (Expecting ',')\n")
    assert main(["status", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert "/data/h.jsonl line 7" in err and "human" in err


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, capsys):
    from distill.pipeline.lock import run_lock

    run_dir = tmp_path / "tiny"
    with run_lock(run_dir):  # held by this process: another process's flock on it is refused
        code = subprocess.run([sys.executable, "-m", "distill.cli", "run", TINY, f"output_dir={tmp_path}"],
                              check=False, capture_output=True, text=True,
                              env={**os.environ, "DISTILL_CACHE": str(tmp_path / "c")})
    assert code.returncode == 75, code.stderr
    assert f"{run_dir} is in use by another `distill run` (pid {os.getpid()})" in code.stderr
    assert len(code.stderr.strip().splitlines()) == 1 and not (run_dir / "dag.json").exists()


def test_a_truncated_jsonl_row_is_named_with_its_line(tmp_path):
    from distill.pipeline.state import describe_error
    from distill.recipe.schema import DataRef
    from distill.world.datasets import load_rows

    path = tmp_path / "human.jsonl"
    path.write_text(json.dumps({"question": "a", "answer": "b"}) + "\n" + '{"question": "c", "ans\n')
    with pytest.raises(ValueError) as info:
        load_rows(DataRef(path="json", data_files=str(path)))
    line = describe_error(info.value)
    assert line.startswith(f"DataFileError: {path} row 2: not valid JSON"), line


# the first lookup of a name outside our folders indexes lm-eval's registry (15-80 s)
@pytest.mark.integration
def test_an_unknown_eval_task_is_caught_before_any_work(tmp_path, capsys):
    assert (main(["run", TINY, f"output_dir={tmp_path}", "eval.tasks=[distill_arith, gsm8k, distill_arihtm]"])
            == 2)
    err = _one_error_line(capsys)
    assert "eval.tasks.2='distill_arihtm'" in err and "did you mean 'distill_arith'" in err
    assert not any(tmp_path.iterdir())


def test_a_bad_row_at_run_time_is_named_in_status(tmp_path, capsys, monkeypatch):
    """The human step of a dataset world reads a truncated JSON-lines file: the step's error, and so
    `distill status`, name the file and the line (not datasets' generic wrapper)."""
    from distill.pipeline.execute import execute_step

    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"question": "q", "answer": "a #### 1"}) + "\n")
    bad = tmp_path / "human.jsonl"
    bad.write_text(good.read_text() + '{"question": "c", "ans\n')
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    refs = [f"world.{k}={{path: json, data_files: {v}}}"
            for k, v in (("human", bad), ("prompts", good), ("test", good))]
    recipe = load_recipe(ROOT / "recipes/gsm8k/hybrid.yaml",
                         [*refs, f"output_dir={tmp_path}", "world.val_size=0",
                                                               f"teacher.model={tmp_path / 'model'}"])
    run_dir, steps, _ = prepare_run(recipe)
    human = next(s for s in steps if s.kind == "human")
    with pytest.raises(ValueError):
        execute_step(run_dir, human.id, threads=1)
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 1
    failed = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("failed:")]
    assert len(failed) == 1 and f"{bad} row 2: not valid JSON" in failed[0], failed
