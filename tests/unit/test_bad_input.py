"""Bad input, tried as a new user would (issue 20): each is refused in one line naming the file, key
or row, exit 2 at load time, or the first step that can know stops, and nothing is published."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distill.cli import main
from distill.recipe import load_recipe

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "recipes/tiny.yaml")
GSM8K = ROOT / "recipes/gsm8k/hybrid.yaml"


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ----------------------------------------------------------------------------- 1: hangs, reinterpretation
def test_a_named_pipe_or_device_as_recipe_is_refused_without_reading(tmp_path, capsys):
    fifo = tmp_path / "recipe.yaml"
    os.mkfifo(fifo)
    assert main(["validate", str(fifo)]) == 2  # would block forever if it were opened
    assert "is a named pipe, not a regular recipe file" in _one_error(capsys)
    assert main(["validate", "/dev/zero"]) == 2
    assert "/dev/zero: is a character device" in _one_error(capsys)


@pytest.mark.parametrize("override",
                         ["train.lr=.inf", "train.lr=.nan", "report.epsilon=.inf", "train.lr=1e400",
                                      "generation.top_p=.nan", "teacher.build.lr=-.inf"])
def test_numbers_no_training_can_use_are_refused(override, tmp_path, capsys):
    assert main(["validate", TINY, f"output_dir={tmp_path}", override]) == 2
    key = override.split("=")[0]
    assert f"{key}: bad value" in _one_error(capsys)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("pair",
                         [("train.lr=1e-3", "train.lr=2e-3"), ("mixes.seeds=[0]", "mixes.seeds=[0,1]"),
                                  ("world.human_pool=50", "world.human_pool=60")])
def test_one_key_overridden_twice_with_different_values_is_refused(pair, tmp_path, capsys):
    assert main(["validate", TINY, f"output_dir={tmp_path}", *pair]) == 2
    assert f"is already set by {pair[0]!r}; give it once" in _one_error(capsys)


def test_the_same_override_twice_is_accepted(tmp_path, capsys):
    assert main(["validate", TINY, f"output_dir={tmp_path}", "train.lr=0.002", "train.lr=0.002"]) == 0


def test_a_duplicate_key_in_the_recipe_file_is_refused(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(Path(TINY).read_text().replace("report: {bootstrap: 100}",
                                                   "report: {bootstrap: 100, bootstrap: 5}"))
    assert main(["validate", str(path)]) == 2
    assert "duplicate key 'bootstrap'" in _one_error(capsys)


def test_a_named_pipe_as_data_file_is_refused(tmp_path, capsys):
    from distill.recipe import RecipeError
    from distill.recipe.checks import check_data

    fifo = tmp_path / "train.jsonl"
    os.mkfifo(fifo)
    refs = [f"world.{k}={{path: json, data_files: {fifo}}}" for k in ("human", "prompts", "test")]
    with pytest.raises(RecipeError, match="not a regular file"):
        check_data(load_recipe(GSM8K, refs), "r.yaml")


# ----------------------------------------------------------------------------- 5: the state is what happened
def test_a_rejected_import_shows_failed_and_a_pending_one_waiting(tmp_path):
    from distill.pipeline.plan import Step
    from distill.pipeline.state import StepState, step_state

    step = Step("expert", {"x": 1}, (), {})
    folder = step.folder(tmp_path, tmp_path / "cache")
    folder.mkdir(parents=True)
    (folder / "waiting.json").write_text("{}")
    assert step_state(step, tmp_path, tmp_path / "cache") is StepState.WAITING
    (folder / "error.txt").write_text("AnnotationsPending: waiting for annotations\n")
    assert step_state(step, tmp_path, tmp_path / "cache") is StepState.WAITING
    (folder / "error.txt").write_text("ValueError: export.json row 3: the annotation was cancelled\n")
    assert step_state(step, tmp_path, tmp_path / "cache") is StepState.FAILED


# ------------------------------------------------------------------------- 6: a launcher's checks are its own
def test_a_local_run_is_not_checked_against_the_slurm_section():
    from distill.allocation import resource_problems

    recipe = load_recipe(GSM8K, ["train.accelerate_config=null"])
    assert resource_problems(recipe, "local") == []
    assert resource_problems(recipe, "slurm")[0].startswith("launcher.slurm.train.gpus_per_node=8")
    local = load_recipe(GSM8K, ["train.accelerate_config=null", "launcher.processes=2"])
    assert resource_problems(local, "local")[0].startswith("launcher.processes=2")
    assert not any(p.startswith("launcher.processes") for p in resource_problems(local, "slurm"))


# ----------------------------------------------------------------------------- 2 and 3: human data files
GOOD = [{"question": f"Q{i}: what is {i}+1?", "answer": f"{i}+1={i + 1}\n#### {i + 1}"} for i in range(12)]


def _world(tmp_path: Path, human: Path, fmt: str, extra=()):
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in GOOD))
    refs = [f"world.human={{path: {fmt}, data_files: {human}}}",
            *(f"world.{k}={{path: json, data_files: {good}}}" for k in ("prompts", "test"))]
    return load_recipe(GSM8K, [*refs, "world.val_size=0", "world.human_pool=10", *extra]).world


def _human(world):
    from distill.world import build_task

    return build_task(world).human()


INT64 = st.integers(-2**63, 2**63 - 1)  # a Parquet column holds int64: pyarrow refuses a larger int outright
BAD_VALUES = st.one_of(st.none(), INT64, st.floats(allow_nan=False), st.booleans(),
                       st.lists(INT64, max_size=2), st.just(""))


@st.composite
def malformed(draw):
    """(format, file bytes, 1-based bad row or None for a whole-file fault)."""
    fmt = draw(st.sampled_from(["json", "parquet"]))
    rows = [dict(r) for r in GOOD]
    row = draw(st.integers(0, len(rows) - 1))
    fault = draw(st.sampled_from(["type", "missing", "truncate", "encoding"] if fmt == "json"
                                 else ["type", "missing", "truncate"]))
    field = draw(st.sampled_from(["question", "answer"]))
    if fault == "type":
        rows[row][field] = draw(BAD_VALUES)
    elif fault == "missing":
        del rows[row][field]
    if fmt == "json":
        lines = [json.dumps(r).encode() for r in rows]
        if fault == "truncate":
            lines[row] = lines[row][: draw(st.integers(1, len(lines[row]) - 1))]
        elif fault == "encoding":
            at = draw(st.integers(1, len(lines[row]) - 2))
            lines[row] = (lines[row][:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))
                          + lines[row][at:])
        return fmt, b"\n".join(lines) + b"\n", row + 1
    sink = pa.BufferOutputStream()
    if fault == "type":  # a Parquet column has one type: the whole column is wrong from its first row
        column = [draw(BAD_VALUES)] * len(rows)
        table = pa.table({"question": [r["question"] for r in GOOD], field: column} if field == "answer"
                         else {field: column, "answer": [r["answer"] for r in GOOD]})
        pq.write_table(table, sink)
        return fmt, sink.getvalue().to_pybytes(), 1
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in r.items() if k != field or fault != "missing"}
                                         for r in rows]), sink)
    data = sink.getvalue().to_pybytes()
    if fault == "truncate":
        return fmt, data[: draw(st.integers(0, len(data) - 1))], None
    return fmt, data, 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=malformed())
def test_malformed_human_files_are_refused_naming_file_and_row(case, tmp_path):
    from distill.world.files import DataFileError

    fmt, data, row = case
    human = tmp_path / f"human.{'jsonl' if fmt == 'json' else 'parquet'}"
    human.write_bytes(data)
    with pytest.raises(DataFileError) as info:
        _human(_world(tmp_path, human, fmt))
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(human)), message
    if row is not None:
        assert f" row {row}:" in message, message


def test_a_bad_human_file_fails_its_step_and_publishes_nothing(tmp_path, capsys, monkeypatch):
    from distill.pipeline.execute import execute_step
    from distill.pipeline.run import prepare_run

    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    human = tmp_path / "human.jsonl"
    rows = [dict(r) for r in GOOD]
    rows[6]["answer"] = 42
    human.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in GOOD))
    refs = [f"world.human={{path: json, data_files: {human}}}",
            *(f"world.{k}={{path: json, data_files: {good}}}" for k in ("prompts", "test"))]
    recipe = load_recipe(GSM8K, [*refs, f"output_dir={tmp_path / 'runs'}", "world.val_size=0",
                                 f"teacher.model={tmp_path / 'model'}"])
    run_dir, steps, _ = prepare_run(recipe)
    step = next(s for s in steps if s.kind == "human")
    with pytest.raises(ValueError):
        execute_step(run_dir, step.id, threads=1)
    folder = step.folder(run_dir, tmp_path / "cache")
    assert not (folder / "source").exists() and not (folder / "DONE").exists()
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 1
    failed = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("failed:")]
    assert len(failed) == 1 and f"{human} row 7: field 'answer' is int 42, expected text" in failed[0], failed


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_a_human_pool_smaller_than_the_recipe_says_is_refused(fmt, tmp_path):
    from distill.world.files import DataFileError

    human = tmp_path / f"human.{fmt}"
    if fmt == "json":
        human.write_text("".join(json.dumps(r) + "\n" for r in GOOD[:5]))
    else:
        pq.write_table(pa.Table.from_pylist(GOOD[:5]), human)
    with pytest.raises(DataFileError, match=r"world.human_pool=10: the human data .* holds 5 rows"):
        _human(_world(tmp_path, human, fmt))


def test_a_human_file_edited_in_place_is_read_again(tmp_path):
    """No library cache between the file and the rows: an edit within one mtime tick is seen."""
    human = tmp_path / "human.jsonl"
    human.write_text("".join(json.dumps(r) + "\n" for r in GOOD))
    stamp = os.stat(human).st_mtime_ns
    first = _human(_world(tmp_path, human, "json"))
    edited = [dict(r, question=r["question"] + " (edited)") for r in GOOD]
    human.write_text("".join(json.dumps(r) + "\n" for r in edited))
    os.utime(human, ns=(stamp, stamp))
    second = _human(_world(tmp_path, human, "json"))
    assert first[0]["prompt"] != second[0]["prompt"] and "(edited)" in second[0]["prompt"]
