"""CHAMP's human first-error marks (the real labels bundled in ``champ-dataset``, extra ``distill[champ]``,
part of ``dev``) imported as a ``first_error`` source: every annotation a row, the learnable prefix
ending where people said the first wrong step starts, bad annotations named by file and row.

Run: pytest tests/unit/test_champ_import.py -q"""
from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path

import pytest

from distill.human import champ
from distill.human.annotation import ImportRowError
from distill.sources import load_source

pytestmark = pytest.mark.unit
pytest.importorskip("champ_dataset", reason="champ-dataset is not installed (pip install -e '.[champ]')")


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads(champ.bundled_file().read_text())


def test_every_champ_annotation_becomes_a_first_error_row(raw):
    work = champ.import_champ(mark_s=9.0)
    annotations = {f"{pid}|{k}": a for pid, p in raw["problems"].items()
                   for k, a in p["fws_annotations"].items()}
    assert len(annotations) > 100 and [r["id"] for r in work.rows] == list(annotations)
    marked = 0
    for row in work.rows:
        ann, meta = annotations[row["id"]], row["meta"]
        pid = row["id"].split("|")[0]
        assert row["origin"] == "first_error" and row["prompt"] == raw["problems"][pid]["_text"]
        assert row["completion"] == ann["text"] and meta["solver"] == ann["author"]
        assert (meta["simulated"] is False and meta["human_s"] == 9.0
                and "no labelling time" in meta["time_source"])
        if ann["start_idx"] is None:
            assert "learn_chars" not in meta  # no mistake: the whole solution is learnable
            continue
        marked += 1
        start, end = meta["mark_span"]
        assert meta["learn_chars"] == start == ann["start_idx"]
        assert row["completion"][start:end] == ann["text"][ann["start_idx"]:ann["end_idx"]]
    assert 0 < marked < len(work.rows)  # CHAMP has both: solutions marked wrong, and ones without a mistake
    assert work.summary()["human_s"] == pytest.approx(9.0 * len(work.rows))


def test_the_readme_command_writes_a_source_that_loads_back(tmp_path):
    """The README's ``python -m distill.human.champ runs/champ`` as written, into a temporary folder."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    args = shlex.split(re.search(r"`\.venv/bin/python -m distill\.human\.champ ([^`]*)`", readme).group(1))
    assert args[0] == "runs/champ"
    assert champ.main([str(tmp_path / "out"), *args[1:]]) == 0
    rows = list(load_source(tmp_path / "out" / "source"))
    summary = json.loads((tmp_path / "out" / "work.json").read_text())
    assert summary["rows"] == len(rows) > 100 and summary["simulated"] is False
    assert {r["origin"] for r in rows} == {"first_error"}
    assert all(json.loads(r["meta"]).get("learn_chars", 0) <= len(r["completion"]) for r in rows)


@pytest.mark.parametrize("breakage, problem", [
    (lambda a: a.update(start_idx=10 ** 6, end_idx=10 ** 6 + 5), "is not a span of the"),
    (lambda a: a.update(end_idx=None), "start_idx="),
    (lambda a: a.update(text=""), "is not a non-empty solution"),
])
def test_a_bad_annotation_is_named_by_file_and_row(tmp_path, raw, breakage, problem, capsys):
    data = {"problems": dict(list(copy.deepcopy(raw["problems"]).items())[:3])}
    pid = list(data["problems"])[1]
    first = next(iter(data["problems"][pid]["fws_annotations"].values()))
    first.update(start_idx=first["start_idx"] or 0, end_idx=first["end_idx"] or 1)
    breakage(first)
    path = tmp_path / "v0.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ImportRowError) as err:
        champ.import_champ(path)
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"{path}: row 1 (id '{pid}|") and problem in line
    assert champ.main([str(tmp_path / "out"), "--data", str(path)]) == 2
    assert problem in capsys.readouterr().err and not (tmp_path / "out").exists()  # nothing half-written
