"""Annotation round trips in the tools' own formats: drafts out, finished work in, bad rows named.

The finished-work files are built here the way each tool writes them: a Label Studio JSON export
(tasks with ``annotations``: ``result`` regions, ``lead_time``, ``completed_by``; labelstud.io/guide/
task_format), Argilla 2 records (``records.to_json``: ``suggestions`` and ``responses`` keyed by
question), PRM800K lines (``label.steps[].completions[].rating``, ``total_time`` in ms). The Label
Studio exports in tests/fixtures/labelstudio/ come from a real server (Label Studio 1.23.2, written
and checked by tests/integration/test_labelstudio_server.py) and pass the same import and error tests.
Run: pytest tests/unit/test_annotation_roundtrip.py -q"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.human import argilla, labelstudio, prm800k
from distill.human.annotation import AnnotationsPending, ImportRowError, tasks_for
from distill.human.expert import step_offset
from distill.human.primitives import drafts_by_prompt
from distill.human.stage import WAITING_FILE, round_trip
from distill.recipe.schema import Experts, ExpertTimes
from distill.sources import meta_of, normalise

pytestmark = pytest.mark.unit
DRAFTS = [  # prompt, two teacher drafts (the first is wrong at step 1 for the first two prompts)
    ("p0", "Q:59+99=", "9+9=18;5+9+1=16;A:168", "9+9=18;5+9+1=15;A:158"),
    ("p1", "Q:47+35=", "7+5=12;4+3=7;A:72", "7+5=12;4+3+1=8;A:82"),
    ("p2", "Q:26+13=", "6+3=9;2+1=3;A:39", "6+3=9;2+1=3;A:39"),
]


def _region(name: str, kind: str, value: dict) -> list[dict]:
    return [{"id": "r1", "from_name": name, "to_name": "prompt", "type": kind, "value": value,
             "origin": "manual"}]


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "labelstudio"


def _regions(name: str, kind: str, key: str, values: dict, leads: dict) -> dict:
    return {tid: {"result": _region(name, kind, {key: v}), "lead_time": leads[tid]}
            for tid, v in values.items()}


# What the annotator submits on the real server for _tasks(primitive) (tests/integration/
# test_labelstudio_server.py); the server's exports of it are the fixtures read below.
LS_ANSWERS = {
    "edited": _regions("solution", "textarea", "text", {
        "p0#0": ["9+9=18;5+9+1=15;A:158"], "p1#0": ["7+5=12;4+3+1=8;A:82"], "p2#0": [DRAFTS[2][2]]},
        {"p0#0": 41.5, "p1#0": 33.0, "p2#0": 12.25}),
    "first_error": _regions("first_error", "number", "number", {"p0#0": 2, "p1#0": 2, "p2#0": 0},
                            {"p0#0": 9.0, "p1#0": 14.0, "p2#0": 6.5}),
    "picked": _regions("pick", "choices", "choices", {"p0#0": ["B"], "p1#0": ["B"], "p2#0": ["neither"]},
                       {"p0#0": 5.0, "p1#0": 4.0, "p2#0": 7.0}),
}


def _tasks(primitive: str):
    rows = [normalise({"id": f"{pid}#{s}", "prompt": prompt, "completion": text, "origin": "synthetic",
                       "meta": {"prompt_id": pid, "sample": s, "answer": a}})
            for pid, prompt, *texts in DRAFTS for s, text in enumerate(texts)
            for a in [texts[1].split("A:")[1]]]
    return tasks_for(primitive, drafts_by_prompt(rows, meta_of), meta_of, limit=10)


def _ls_export(tasks_file: Path, answer) -> list[dict]:
    """What Label Studio's JSON export holds after annotators worked on the imported tasks."""
    out = []
    for i, task in enumerate(json.loads(tasks_file.read_text())):
        result, lead = answer(task["data"])
        out.append({"id": i + 1, "data": task["data"], "predictions": task["predictions"], "project": 7,
                    "annotations": [{"id": 100 + i, "result": result, "was_cancelled": False,
                                     "ground_truth": False,
                                     "created_at": "2026-12-01T10:00:00Z", "lead_time": lead,
                                     "result_count": 0,
                                     "task": i + 1, "completed_by": 10}]})
    return out


def test_label_studio_edit_round_trip(tmp_path):
    tasks = _tasks("edited")
    path = labelstudio.export_tasks(tasks, tmp_path)
    exported = json.loads(path.read_text())
    assert [t["predictions"][0]["result"][0]["value"]["text"][0] for t in exported] == [d[2] for d in DRAFTS]
    assert (tmp_path / "label_config.xml").read_text().count('name="solution"') == 1
    fixed = {"p0#0": "9+9=18;5+9+1=15;A:158", "p1#0": "7+5=12;4+3+1=8;A:82", "p2#0": DRAFTS[2][2]}
    done = _ls_export(path,
                      lambda d: (_region("solution", "textarea", {"text": [fixed[d["distill_id"]]]}), 41.5))
    (tmp_path / "export.json").write_text(json.dumps(done))
    work = labelstudio.import_annotations(tmp_path / "export.json", tasks)
    assert [r["completion"] for r in work.rows] == list(fixed.values())
    for row in work.rows:
        assert row["origin"] == "edited" and row["meta"]["human_s"] == 41.5
        assert row["meta"]["simulated"] is False and row["meta"]["expert"] == "label-studio:10"
        assert row["meta"]["draft"] == {f"{d[0]}#0": d[2] for d in DRAFTS}[row["id"]]


def test_label_studio_marks_and_picks(tmp_path):
    marks = _tasks("first_error")
    path = labelstudio.export_tasks(marks, tmp_path / "m")
    number = {"p0#0": 2, "p1#0": 2, "p2#0": 0}  # 1-based step numbers; 0: all right
    done = _ls_export(path,
                      lambda d: (_region("first_error", "number", {"number": number[d["distill_id"]]}), 9.0))
    (tmp_path / "m.json").write_text(json.dumps(done))
    work = labelstudio.import_annotations(tmp_path / "m.json", marks)
    cut = {r["id"]: r["meta"].get("learn_chars") for r in work.rows}
    assert cut == {"p0#0": step_offset(DRAFTS[0][2], 1), "p1#0": step_offset(DRAFTS[1][2], 1), "p2#0": None}
    picks = _tasks("picked")
    path = labelstudio.export_tasks(picks, tmp_path / "p")
    choice = {"p0#0": "B", "p1#0": "B", "p2#0": "neither"}
    done = _ls_export(path,
                      lambda d: (_region("pick", "choices", {"choices": [choice[d["distill_id"]]]}), 5.0))
    (tmp_path / "p.json").write_text(json.dumps(done))
    work = labelstudio.import_annotations(tmp_path / "p.json", picks)
    assert [r["id"] for r in work.rows] == ["p0#1", "p1#1"] and work.discarded_s == 5.0


@pytest.mark.parametrize("primitive", ["edited", "first_error", "picked"])
def test_a_real_label_studio_export_imports(primitive):
    """The server's own JSON export (Label Studio 1.23.2; written by the integration test)."""
    tasks = _tasks(primitive)
    work = labelstudio.import_annotations(FIXTURES / f"{primitive}.json", tasks)
    answers = LS_ANSWERS[primitive]
    assert work.items == 3 and work.summary()["human_s"] == sum(a["lead_time"] for a in answers.values())
    assert all(r["meta"]["expert"].startswith("label-studio:") for r in work.rows)
    if primitive == "edited":
        assert {r["id"]: r["completion"] for r in work.rows} == {k: a["result"][0]["value"]["text"][0]
                                                                for k, a in answers.items()}
    elif primitive == "first_error":
        assert ({r["id"]: r["meta"].get("mark_step") for r in work.rows}
                == {"p0#0": 1, "p1#0": 1, "p2#0": None})
    else:
        assert [r["id"] for r in work.rows] == ["p0#1", "p1#1"] and work.discarded_s == 7.0


def _real_export(tasks_file: Path, answer) -> list[dict]:
    """The edited fixture, exported by a real server, with _ls_export's signature."""
    return json.loads((FIXTURES / "edited.json").read_text())


@pytest.mark.parametrize("make", [_ls_export, _real_export], ids=["built", "real-server"])
@pytest.mark.parametrize("breakage, problem", [
    (lambda t: t["annotations"][0].pop("lead_time"), "lead_time=None"),
    (lambda t: t["annotations"][0].update(lead_time=-3), "lead_time=-3"),
    (lambda t: t["annotations"][0].update(result=[]), "no 'solution' result"),
    (lambda t: t["annotations"][0].update(was_cancelled=True), "no finished annotation"),
    (lambda t: t["data"].update(distill_id="nope"), "names no exported task"),
    (lambda t: t["annotations"][0]["result"][0].update(type="choices"), "not a textarea region"),
])
def test_label_studio_malformed_row_is_rejected_by_file_and_row(tmp_path, make, breakage, problem):
    tasks = _tasks("edited")
    path = labelstudio.export_tasks(tasks, tmp_path)
    done = make(path, lambda d: (_region("solution", "textarea", {"text": ["1+1=2;A:2"]}), 3.0))
    breakage(done[1])
    (tmp_path / "export.json").write_text(json.dumps(done))
    with pytest.raises(ImportRowError) as err:
        labelstudio.import_annotations(tmp_path / "export.json", tasks)
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"{tmp_path / 'export.json'}: row 1 ") and problem in line


def _argilla_done(records_file: Path, answer) -> list[dict]:
    out = []
    for record in json.loads(records_file.read_text()):
        value = answer(record)
        question = (next(iter(record["suggestions"]), None)
                    or ("pick" if "draft_b" in record["fields"] else "first_error"))
        out.append({**record,
                    "responses": {question: [{"value": value, "user_id": "0b6b-user",
                                              "status": "submitted"}]},
                    "_server_id": "5e6c0a2e-1111-4a4a-9999-000000000000", "status": "completed"})
    return out


def test_argilla_round_trip(tmp_path):
    times = ExpertTimes(edit_s=20, mark_s=11, pick_s=4)
    tasks = _tasks("edited")
    path = argilla.export_records(tasks, tmp_path)
    records = json.loads(path.read_text())
    assert (set(records[0])
            == {"id", "fields", "metadata", "suggestions", "responses", "vectors", "_server_id"})
    assert records[0]["suggestions"]["solution"] == {"value": DRAFTS[0][2], "score": None, "agent": "teacher"}
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["questions"] == [{"type": "text", "name": "solution"}]
    done = _argilla_done(path, lambda r: r["fields"]["draft"].replace("A:168", "A:158"))
    (tmp_path / "done.json").write_text(json.dumps(done))
    work = argilla.import_records(tmp_path / "done.json", tasks, times)
    assert work.rows[0]["completion"] == "9+9=18;5+9+1=16;A:158"
    assert all(r["meta"]["human_s"] == 20 and r["meta"]["expert"] == "argilla:0b6b-user" for r in work.rows)
    assert "Argilla records no annotation time" in work.rows[0]["meta"]["time_source"]
    picks = _tasks("picked")
    path = argilla.export_records(picks, tmp_path / "p")
    done = _argilla_done(path, lambda r: "b" if r["id"] != "p2#0" else "neither")
    (tmp_path / "p.json").write_text(json.dumps(done))
    work = argilla.import_records(tmp_path / "p.json", picks, times)
    assert [r["id"] for r in work.rows] == ["p0#1", "p1#1"] and work.discarded_s == 4


@pytest.mark.parametrize("breakage, problem", [
    (lambda r: r["responses"]["solution"][0].update(status="discarded"), "no submitted response"),
    (lambda r: r.update(responses=[]), "expected a mapping"),
    (lambda r: r["responses"]["solution"][0].update(value=""), "not a non-empty string"),
    (lambda r: r.update(id="ghost"), "names no exported record"),
])
def test_argilla_malformed_row_is_rejected_by_file_and_row(tmp_path, breakage, problem):
    tasks = _tasks("edited")
    done = _argilla_done(argilla.export_records(tasks, tmp_path), lambda r: "1+1=2;A:2")
    breakage(done[2])
    (tmp_path / "done.json").write_text(json.dumps(done))
    with pytest.raises(ImportRowError) as err:
        argilla.import_records(tmp_path / "done.json", tasks, ExpertTimes())
    assert str(err.value).startswith(f"{tmp_path / 'done.json'}: row 2 ") and problem in str(err.value)


def test_prm800k_labels_import_as_first_error(tmp_path):
    tasks = _tasks("first_error")
    lines = [json.loads(x) for x in prm800k.export_questions(tasks, tmp_path).read_text().splitlines()]
    ratings = {"p0#0": [1, -1, -1], "p1#0": [1, -1, 1], "p2#0": [1, 1, 1]}
    finish = {"p0#0": "found_error", "p1#0": "found_error", "p2#0": "solution"}
    done = [{"labeler": "340d89bc", "timestamp": "2023-01-22T04:34:27", "generation": None,
             "is_quality_control_question": False, "is_initial_screening_question": False,
             "question": {k: v for k, v in line["question"].items()},
             "label": {"steps": [{"completions": [{"text": s, "rating": r, "flagged": None}],
                                  "human_completion": None,
                                  "chosen_completion": 0}
                                 for s, r in zip(line["question"]["pre_generated_steps"],
                                                 ratings[line["distill_id"]])],
                       "total_time": 278270, "finish_reason": finish[line["distill_id"]]}}
            for line in lines]  # matched by problem text and steps: PRM800K lines carry no id of ours
    (tmp_path / "labels.jsonl").write_text("\n".join(json.dumps(d) for d in done))
    work = prm800k.import_labels(tmp_path / "labels.jsonl", tasks)
    assert {r["id"]: r["meta"].get("mark_step") for r in work.rows} == {"p0#0": 1, "p1#0": 1, "p2#0": None}
    assert all(r["meta"]["human_s"] == pytest.approx(278.27) for r in work.rows)
    done[1]["label"]["steps"][0]["completions"][0]["rating"] = 5
    (tmp_path / "bad.jsonl").write_text("\n".join(json.dumps(d) for d in done))
    with pytest.raises(ImportRowError, match=r"bad.jsonl: row 1 .*rating outside"):
        prm800k.import_labels(tmp_path / "bad.jsonl", tasks)


def test_the_step_waits_for_the_import_file_then_resumes(tmp_path):
    tasks, experts = _tasks("edited"), Experts(kind="label_studio")
    with pytest.raises(AnnotationsPending, match="waiting for annotations: put the project's Label Studio"):
        round_trip("label_studio", tasks, experts, tmp_path)
    assert (tmp_path / WAITING_FILE).exists() and (tmp_path / "export" / "tasks.json").exists()
    done = _ls_export(tmp_path / "export" / "tasks.json",
                      lambda d: (_region("solution", "textarea", {"text": ["1+1=2;A:2"]}), 7.0))
    (tmp_path / "import" / "export.json").write_text(json.dumps(done))
    work = round_trip("label_studio", tasks, experts, tmp_path)
    assert len(work.rows) == 3 and not (tmp_path / WAITING_FILE).exists()


def test_a_waiting_expert_step_shows_as_waiting(tmp_path):
    from distill.pipeline.plan import Step
    from distill.pipeline.state import ERROR_FILE, StepState, step_state

    step = Step("expert", {"primitive": "edited"})
    folder = step.folder(tmp_path, tmp_path / "cache")
    folder.mkdir(parents=True)
    (folder / ERROR_FILE).write_text("AnnotationsPending: waiting for annotations\n")
    (folder / WAITING_FILE).write_text("{}")
    assert step_state(step, tmp_path, tmp_path / "cache") is StepState.WAITING
    (folder / WAITING_FILE).unlink()
    assert step_state(step, tmp_path, tmp_path / "cache") is StepState.FAILED
