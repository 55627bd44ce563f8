"""The streaming merge's fast paths write the same bytes as the plain json calls they replace.

Source lines (``sources.row_line``, ``sources.canonical_json``) are what a source's content hash reads;
shard lines are parsed with orjson (``shards.parse_json_line``); the contamination index is saved with
its hashes and read back without its grams until a hash hits.
Run: pytest tests/unit/test_merge_encoding.py -q"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from distill.generation.contamination import ContaminationIndex
from distill.generation.shards import parse_json_line
from distill.sources import canonical_json, normalise, row_line

pytestmark = pytest.mark.unit

TEXTS = ["plain words 12 + 30 = 42", 'quotes " and \\ backslash', "tab\tnew\nline\r\x00\x1f\x7f",
         "unicode é 数学 \u2028 \u2029 😀", "", "\ud800 lone surrogate"]


@pytest.mark.parametrize("text", TEXTS)
def test_row_line_is_json_dumps_of_the_normalised_row(text: str) -> None:
    row = {"id": 7, "prompt": text, "completion": text[::-1], "origin": "synthetic",
           "meta": {"z": 1, "a": [text, 1.5, None, True], "é": {"b": float("inf")}}}
    assert row_line(row) == json.dumps(normalise(row), sort_keys=True, ensure_ascii=False)
    assert normalise(row)["meta"] == json.dumps(row["meta"], sort_keys=True)


def test_row_line_of_a_non_string_completion_follows_json() -> None:
    row = {"id": "r", "prompt": "p", "completion": None, "origin": "synthetic", "meta": "{}"}
    assert row_line(row) == json.dumps(normalise(row), sort_keys=True, ensure_ascii=False)


@pytest.mark.parametrize("obj", [[1, "é", {"b": 2, "a": [0.1, -0.0, 1e300]}], {"k": "\n"}, "s", 3, None,
                                 {"topk": [[-1.25, float("-inf")]], "nan": float("nan")}])
def test_canonical_json_is_json_dumps(obj) -> None:
    assert canonical_json(obj) == json.dumps(obj, sort_keys=True, ensure_ascii=False)


def test_canonical_json_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


@pytest.mark.parametrize("value", [{"a": [1, 2.5, "é"]}, {"lp": [-math.inf, 0.5]}, {"big": 2**70},
                                   {"nan": math.nan}])
def test_parse_json_line_reads_what_json_wrote(value) -> None:
    line = json.dumps(value, sort_keys=True, ensure_ascii=False)
    parsed = parse_json_line(line.encode())
    assert json.dumps(parsed, sort_keys=True) == json.dumps(json.loads(line), sort_keys=True)


def test_saved_index_flags_the_same_texts_and_reads_grams_only_on_a_hit(tmp_path) -> None:
    prompts = ["Ava has 12 apples and gives three of them to her friend Ben at the market today",
               "Compute the sum of all even numbers below one hundred, then divide it by seven please"]
    built = ContaminationIndex.from_prompts(prompts, 8)
    built.save(tmp_path / "contamination.json")
    loaded = ContaminationIndex.load(tmp_path / "contamination.json")
    assert np.array_equal(loaded.keys, built.keys) and loaded.lengths == built.lengths
    clean = ["nothing of the eval here at all, only other words and 12 numbers"] * 3
    assert not loaded.contaminated(clean).any()
    assert loaded._grams is None  # no hash hit: the gram list was never parsed
    texts = (clean
             + ["so: AVA has 12 apples and gives three of them to her!", "Ava has 12 apples and gives three"])
    assert (loaded.contaminated(texts).tolist() == built.contaminated(texts).tolist() == [False] * 3
            + [True, False])
    assert loaded._grams == built.grams


def test_parse_json_line_keeps_floats_and_integers_exact() -> None:
    rng = np.random.default_rng(0)
    floats = [*rng.uniform(-30, 0, 2000).tolist(), *(10.0 ** rng.uniform(-300, 300, 2000)).tolist()]
    ints = [2**63 - 1, -2**63, 2**64 - 1, 2**64, -2**63 - 1, 10**30, -(10**19)]
    line = json.dumps({"floats": floats, "ints": ints, "text": "digits 1234567890123456789012 in a string"})
    parsed = parse_json_line(line)
    assert parsed["floats"] == floats and parsed["ints"] == ints
    assert all(type(i) is int for i in parsed["ints"])
    for i in ints:
        value = parse_json_line(json.dumps({"x": i}).encode())["x"]
        assert value == i and type(value) is int
