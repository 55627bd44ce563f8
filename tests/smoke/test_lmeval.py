"""lm-eval on distill's own tasks, for real: in-process on a tiny random model, with an oracle LM that
knows the answers (the task's regex + exact match must then score 1.0), and the plain `lm_eval` CLI.

Run: pytest tests/smoke/test_lmeval.py -q   (~45 s on 2 busy cores, most of it the CLI subprocess)
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lm_eval.api.model import LM

from distill.world import build_task
from distill.world.arithmetic import solve
from evals.lmeval import (
    TASKS_DIR,
    eval_kwargs,
    evaluate_model,
    item_vector,
    score_record,
    task_manager,
)

pytestmark = pytest.mark.smoke
ROOT = Path(__file__).resolve().parents[2]
TASKS = ["distill_arith", "distill_arith_logprob"]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from distill.models import load_model, load_tokenizer

    return load_model(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))


def test_load_reads_world_from_metadata():
    spec = importlib.util.spec_from_file_location("distill_tasks_arith", TASKS_DIR / "arith.py")
    arith = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arith)
    data = arith.load(world={"test_size": 7, "seed": 3}, version=1.0, pretrained="ignored/path")
    assert data["test"].num_rows == 7 and data["fewshot"].num_rows == arith.FEWSHOT_ROWS
    assert (data["test"][0]["id"] == "test-0"
            and data["test"][0]["completion"].endswith("A:" + data["test"][0]["answer"]))
    assert arith.load()["test"].num_rows == 500  # ArithmeticWorld defaults
    with pytest.raises(ValueError, match="kind"):
        arith.load(world={"kind": "dataset"})


def test_eval_section_maps_to_kwargs(world):
    from distill.recipe.schema import Eval

    kwargs = eval_kwargs(Eval(tasks=["distill_arith_all"], limit=5, num_fewshot=1))
    res = evaluate_model(OracleLM(), None, world=world, **kwargs)
    assert res["settings"]["limit"] == 5 and res["tasks"]["distill_arith"]["n_shot"] == 1
    assert len(res["tasks"]["distill_arith_logprob"]["items"]) == 5


def test_task_manager_is_cached_and_skips_builtins(world):
    manager = task_manager(TASKS, None, world)
    assert manager is task_manager(TASKS, None, world.model_dump())
    assert {"distill_arith", "distill_arith_logprob", "distill_arith_all"} <= set(manager.all_tasks)
    assert "gsm8k" not in manager.all_tasks  # built-ins are indexed only when a built-in task is asked for
    with pytest.raises(FileNotFoundError, match="include_path"):
        task_manager(TASKS, "/no/such/folder", world)


def test_in_process_random_model(tiny, world, tmp_path):
    model, tok = tiny
    res = evaluate_model(model, tok, TASKS, world=world, out_dir=tmp_path, batch_size=50, max_gen_toks=24)
    gen, lp = res["tasks"]["distill_arith"], res["tasks"]["distill_arith_logprob"]
    expected_ids = [f"test-{i}" for i in range(world.test_size)]
    for task in (gen, lp):
        assert [it["id"] for it in task["items"]] == expected_ids
        assert task["n_samples"]["effective"] == world.test_size and task["version"] == 1.0
        assert task["config"]["metadata"]["world"]["test_size"] == world.test_size
    correct = item_vector(res)
    assert set(correct) <= {0, 1} and gen["score"] == pytest.approx(sum(correct) / len(correct))
    assert gen["metric"] == "exact_match,strict-match" and "exact_match_stderr,strict-match" in gen["metrics"]
    answers = [row["meta"]["answer"] for row in build_task(world).test()]
    assert [it["target"] for it in gen["items"]] == answers
    assert all(isinstance(it["response"], str) for it in gen["items"])  # "[invalid]" when no A:<int>
    logprobs = [it["logprob"] for it in lp["items"]]
    assert all(lp_ < 0 and math.isfinite(lp_) for lp_ in logprobs)
    assert lp["metrics"]["logprob,none"] == pytest.approx(sum(logprobs) / len(logprobs))
    # The log-prob lm-eval reports is the model's own: recompute the first items by teacher forcing.
    docs = {it["id"]: it for it in lp["items"]}
    for row in build_task(world).test()[:3]:
        ctx = tok(row["prompt"]).input_ids
        full = tok(row["prompt"] + row["completion"]).input_ids
        with torch.no_grad():
            logits = model(torch.tensor([full])).logits[0].log_softmax(-1)
        expected = sum(logits[i - 1, full[i]].item() for i in range(len(ctx), len(full)))
        assert docs[row["id"]]["logprob"] == pytest.approx(expected, rel=1e-4)
        assert docs[row["id"]]["target"] == row["completion"]
    assert res["seeds"]["random_seed"] == 0 and res["versions"]["lm_eval"] and res["wall_s"] > 0
    assert res["settings"]["max_gen_toks"] == 24 and res["world"]["test_size"] == world.test_size
    assert score_record(res) == {"score": gen["score"], "items": correct}


class OracleLM(LM):
    """Answers every arithmetic prompt with the worked solution (or one off by one when ``wrong``)."""

    def __init__(self, wrong: bool = False):
        super().__init__()
        self.wrong, self.prompts = wrong, []

    def generate_until(self, requests):
        out = []
        for req in requests:
            self.prompts.append(req.args[0])
            a, op, b = _parse(req.args[0])
            steps, answer = solve(a, op, b).split("A:")
            out.append(f"{steps}A:{int(answer) + 1}" if self.wrong else f"{steps}A:{answer}\nQ:1+1=")
        return out

    def loglikelihood(self, requests):
        return [(-1.0, True) for _ in requests]

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError


def _parse(prompt: str) -> tuple[int, str, int]:
    body = prompt.rsplit("Q:", 1)[1].rstrip("=")
    op = "+" if "+" in body else "-"
    a, b = body.split(op)
    return int(a), op, int(b)


@pytest.mark.parametrize("wrong,expected", [(False, 1.0), (True, 0.0)])
def test_oracle_scores_through_the_real_task(world, wrong, expected):
    res = evaluate_model(OracleLM(wrong=wrong), None, ["distill_arith_all"], world=world, limit=25)
    gen = res["tasks"]["distill_arith"]
    assert gen["score"] == expected and len(gen["items"]) == 25
    assert all(it["response"] == str(int(it["target"]) + int(wrong)) for it in gen["items"])
    assert res["groups"] == {"distill_arith_all": TASKS}
    assert res["tasks"]["distill_arith_logprob"]["metrics"]["greedy_match,none"] == 1.0


def test_num_fewshot_shows_worked_solutions(world):
    oracle = OracleLM()
    res = evaluate_model(oracle, None, ["distill_arith"], world=world, limit=3, num_fewshot=2)
    assert res["tasks"]["distill_arith"]["n_shot"] == 2 and res["tasks"]["distill_arith"]["score"] == 1.0
    shots = oracle.prompts[0].split("\n")
    assert len(shots) == 3 and shots[0].startswith("Q:") and ";A:" in shots[0] and shots[2].endswith("=")


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "lm_eval"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lm_eval"]


def test_plain_cli_from_repo_root(tiny_model_dir, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = _cli() + ["--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--include_path",
                    "evals/tasks",
                    "--tasks", "distill_arith", "--limit", "20", "--device", "cpu", "--batch_size", "20",
                    "--metadata", json.dumps({"world": {"test_size": 30}}), "--output_path", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = tmp_path.rglob("results_*.json")
    out = json.loads(path.read_text())
    assert out["n-samples"]["distill_arith"] == {"original": 30, "effective": 20}
    assert "exact_match,strict-match" in out["results"]["distill_arith"]
    assert out["configs"]["distill_arith"]["metadata"]["version"] == 1.0
