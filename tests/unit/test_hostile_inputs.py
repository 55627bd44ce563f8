"""Bad input no earlier test tried (issue 20, round two's hostile pass): YAML yes/no where a number is
meant, integers past 64 bits, seeds numpy cannot take, a test split that swallows the world, links that
lead nowhere, a folder as a data file, and a data file edited between planning and the step that reads
it. Each is one line naming the key or file, exit 2 at load time, or the step fails and publishes nothing.
Run: pytest tests/unit/test_hostile_inputs.py -q"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.cli import main
from distill.recipe import load_recipe

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "recipes/tiny.yaml")
GSM8K = ROOT / "recipes/gsm8k/hybrid.yaml"
ROWS = [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"} for i in range(20)]


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ----------------------------------------------------------------------------- 1: reinterpreted at load
@pytest.mark.parametrize("override, key", [
    ("train.tokens=true", "train: tokens=True"),  # YAML 1.1: true -> pydantic's 1
    ("mixes.sizes=[50, yes]", "mixes: sizes=[50, True]"),
    ("report.convergence.factor=on", "report.convergence: factor=True"),
    ("name=no", "name=False"),  # the "Norway problem": an unquoted no is False
])
def test_a_yaml_yes_no_where_a_number_or_name_is_meant_is_refused(override, key, tmp_path, capsys):
    assert main(["validate", TINY, f"output_dir={tmp_path}", override]) == 2
    line = _one_error(capsys)
    assert key in line and "YAML reads true, yes, on, false, no and off as a yes/no" in line, line
    assert not any(tmp_path.iterdir())


def test_a_quoted_no_is_a_name(tmp_path, capsys):
    assert main(["validate", TINY, f"output_dir={tmp_path}", "name='no'"]) == 0
    assert capsys.readouterr().out.startswith("ok: no ")


@pytest.mark.parametrize("override, fragment", [
    ("train.tokens=1" + "0" * 30, "train: tokens=1" + "0" * 30 + " is larger than a 64-bit integer"),
    ("mixes.seeds=[-1]", "mixes.seeds.0: bad value -1: Input should be greater than or equal to 0"),
    ("world.seed=4294967296", "world.seed: bad value 4294967296: Input should be less than 4294967296"),
    ("generation.seed=-3", "generation.seed: bad value -3"),
])
def test_integers_no_library_can_take_are_refused(override, fragment, tmp_path, capsys):
    assert main(["validate", TINY, f"output_dir={tmp_path}", override]) == 2
    assert fragment in _one_error(capsys)


@pytest.mark.parametrize("overrides, fragment", [
    (["world.min_digits=1", "world.max_digits=1", "world.test_size=500"],
     "test_size=500 would hold most of the 126 distinct problems"),  # drawing training problems never ended
    (["world.ops=[+]", "world.min_digits=1", "world.max_digits=1", "world.test_size=41"],
     "test_size=41 would hold most of the 81 distinct problems"),
])
def test_a_test_split_that_would_swallow_the_world_is_refused(overrides, fragment, tmp_path, capsys):
    assert main(["validate", TINY, f"output_dir={tmp_path}", *overrides]) == 2
    assert fragment in _one_error(capsys)
    assert main(["validate", TINY, f"output_dir={tmp_path}", *overrides[:-1], "world.test_size=40"]) == 0


@pytest.mark.parametrize("seq_len, ok", [(128, True), (256, True), (257, False), (10**9, False)])
def test_rows_longer_than_the_built_student_holds_are_refused(seq_len, ok, tmp_path, capsys):
    assert main(["validate", TINY, f"output_dir={tmp_path}", f"train.seq_len={seq_len}"]) == (0 if ok else 2)
    if not ok:
        line = _one_error(capsys)
        assert f"train.seq_len={seq_len}: longer than the built student's" in line
        assert "student.arch.max_position_embeddings=256" in line


def test_a_recipe_link_that_loops_is_named(tmp_path, capsys):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    assert main(["validate", str(tmp_path / "a.yaml")]) == 2
    assert "a symbolic link that leads to no recipe file (broken or a loop)" in _one_error(capsys)


def _gsm8k_args(tmp_path: Path, human: str) -> list[str]:
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return [str(GSM8K), "--launcher", "local", f"world.human={{path: json, data_files: {human}}}",
            *(f"world.{k}={{path: json, data_files: {good}}}" for k in ("prompts", "test"))]


def test_a_folder_or_a_dead_link_as_data_file_is_refused_at_validate(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert main(["validate", *_gsm8k_args(tmp_path, str(tmp_path / "data"))]) == 2
    assert f"world.human.data_files='{tmp_path / 'data'}': is a folder; name its files" in _one_error(capsys)
    (tmp_path / "dead.jsonl").symlink_to(tmp_path / "gone.jsonl")
    assert main(["validate", *_gsm8k_args(tmp_path, str(tmp_path / "dead.jsonl"))]) == 2
    assert "dead.jsonl': a symbolic link that leads to no file (broken or a loop)" in _one_error(capsys)


# ----------------------------------------------------------------------------- 2: what the id hashed
def test_a_data_file_edited_after_planning_fails_the_step_that_reads_it(tmp_path, capsys, monkeypatch):
    from distill.pipeline.execute import execute_step
    from distill.pipeline.identity import InputChanged
    from distill.pipeline.run import prepare_run

    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    human = tmp_path / "human.jsonl"
    human.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    args = _gsm8k_args(tmp_path, str(human))
    overrides = [*args[3:], f"output_dir={tmp_path / 'runs'}", "world.val_size=0", "world.human_pool=10",
                 f"teacher.model={tmp_path / 'model'}"]
    run_dir, steps, cache = prepare_run(load_recipe(GSM8K, overrides))
    step = next(s for s in steps if s.kind == "human")
    human.write_text("".join(json.dumps(dict(r, question=r["question"] + "?")) + "\n" for r in ROWS))
    with pytest.raises(InputChanged, match=f"{human}: changed since this run was planned"):
        execute_step(run_dir, step.id, threads=1)
    assert not (step.folder(run_dir, cache) / "DONE").exists()
    assert not (step.folder(run_dir, cache) / "source").exists()
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 1
    assert "changed since this run was planned" in capsys.readouterr().err
    _, again, _ = prepare_run(load_recipe(GSM8K, overrides))  # the rerun plans it anew: a new id, read whole
    fresh = next(s for s in again if s.kind == "human")
    assert fresh.id != step.id
    execute_step(run_dir, fresh.id, threads=1)
    assert (fresh.folder(run_dir, cache) / "DONE").exists()


@pytest.mark.parametrize("rows, size, fragment", [
    (0, None, "world.test: the test data (json {f}) holds 0 rows; nothing to evaluate on"),
    (5, 8, "world.test_size=8: the test data (json {f}) holds 5 rows; lower test_size or add data"),
])
def test_a_test_split_smaller_than_the_recipe_says_is_refused(rows, size, fragment, tmp_path):
    from distill.world import build_task
    from distill.world.files import DataFileError

    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:rows]))
    args = _gsm8k_args(tmp_path, str(tmp_path / "good.jsonl"))
    overrides = [*args[3:5], f"world.test={{path: json, data_files: {test}}}", "world.val_size=0",
                 "world.human_pool=10", *([f"world.test_size={size}"] if size else [])]
    task = build_task(load_recipe(GSM8K, overrides).world)
    with pytest.raises(DataFileError) as err:
        task.test()
    assert str(err.value) == fragment.format(f=test)
    with pytest.raises(DataFileError):  # generation holds the test split out, so it stops there too
        task.prompts(5)


# ----------------------------------------------------------------------------- 3: errors that say where
@pytest.mark.parametrize("content, fragment", [
    ("a: [\n", "line 2 not valid YAML"),  # was a yaml traceback from the resource check
    ("- a\n", "an accelerate config is a YAML mapping, got list"),
    (None, "is a folder, not a YAML accelerate config"),
])
def test_a_broken_accelerate_config_is_one_line_naming_it(content, fragment, tmp_path, capsys):
    config = tmp_path / "acc.yaml"
    config.mkdir() if content is None else config.write_text(content)
    assert main(["validate", TINY, f"output_dir={tmp_path}", f"train.accelerate_config={config}"]) == 2
    line = _one_error(capsys)
    assert f"train.accelerate_config={config}" in line and fragment in line, line


@pytest.mark.parametrize("content, fragment", [("{", "config.json is not valid JSON"),
                                               ("[1]", "config.json is not a JSON object")])
def test_a_model_folder_with_a_broken_config_is_refused_at_validate(content, fragment, tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(content)
    assert main(["validate", TINY, f"output_dir={tmp_path}", f"teacher.model={tmp_path / 'model'}"]) == 2
    assert f"teacher.model='{tmp_path / 'model'}': " in (line := _one_error(capsys)) and fragment in line


@pytest.mark.parametrize("content, fragment", [
    (b"{", "Expecting property name"), (b"[]", "list indices"),
    (b'{"cache_dir": "/x", "steps": [{"id": "a"}]}', "missing key 'kind'"), (b"\xff", "can't decode")])
def test_a_damaged_dag_is_one_line_naming_it(content, fragment, tmp_path, capsys):
    (tmp_path / "dag.json").write_bytes(content)
    for command in ("status", "report"):
        assert main([command, str(tmp_path)]) == 2
        line = _one_error(capsys)
        assert f"{tmp_path / 'dag.json'}: not a readable distill DAG (" in line and fragment in line, line
