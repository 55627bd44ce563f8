"""The student trainer on a tiny Llama and arithmetic data, on CPU, in one process.

Run: pytest tests/smoke/test_train.py -q      (about 1-2 minutes on 2 cores)
Covers: packed rows do not leak between examples; loss falls and the student reloads as a plain HF
model; per-source weights; stored and online KD; kill -9 then resume equals an uninterrupted run;
the saved student runs under the plain lm-eval CLI.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from distill.recipe.schema import KD, Train
from distill.training import TrainJob, train
from distill.world.arithmetic import problems, record

pytestmark = pytest.mark.smoke
ROOT = Path(__file__).resolve().parents[2]


def _rows(world, count: int, weight: float = 1.0, stream: str = "human", source: str = "human"):
    return [{"prompt": r["prompt"], "completion": r["completion"], "source": source, "weight": weight}
            for r in map(record, problems(world, stream, count))]


def _save(rows: list[dict], folder: Path) -> str:
    from datasets import Dataset

    Dataset.from_list(rows).save_to_disk(str(folder))
    return str(folder)


def _train(**kw) -> Train:
    base = {"tokens": 40 * 8 * 128, "seq_len": 128, "global_batch_size": 8, "micro_batch_size": 4,
            "lr": 3e-3, "warmup_ratio": 0.1, "checkpoint_every": 1000, "log_every": 1000}
    return Train(**{**base, **kw})


@pytest.fixture(scope="module")
def mix_dir(tmp_path_factory, world) -> str:
    rows = _rows(world, 300) + _rows(world, 300, 0.5, "prompts", "synthetic")
    return _save(rows, tmp_path_factory.mktemp("data") / "mix")


# ----------------------------------------------------------------------------- packing leaks nothing
@pytest.mark.parametrize("attn", ["sdpa", "eager", "distill_packed"])
def test_packed_example_sees_only_itself(tiny_model_dir, attn):
    from transformers import AutoModelForCausalLM

    from distill.training.attention import register

    register()
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    model.set_attn_implementation(attn)
    torch.manual_seed(1)
    a, b = torch.randint(3, 200, (1, 23)), torch.randint(3, 200, (1, 17))
    row = torch.cat([a, b], 1)
    reset = torch.cat([torch.arange(23), torch.arange(17)]).unsqueeze(0)
    with torch.no_grad():
        alone = model(input_ids=b, position_ids=torch.arange(17)[None], use_cache=False).logits[0]
        packed = model(input_ids=row, position_ids=reset, use_cache=False).logits[0, 23:]
        naive = model(input_ids=row, use_cache=False).logits[0, 23:]  # no reset: B attends to A
    assert (packed - alone).abs().max() < 1e-4
    assert (naive - alone).abs().max() > 1e-2  # the check can fail: without reset ids it leaks


def test_packed_attention_equals_masked_sdpa_with_gradients(tiny_model_dir):
    """distill's per-example attention against transformers' block-diagonal sdpa mask, on rows with
    several examples, a lone token, an example as long as the row, and padding."""
    from transformers import AutoModelForCausalLM

    from distill.training.attention import register
    from distill.training.packing import collate

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).train()
    torch.manual_seed(0)
    ids = [torch.randint(3, 250, (n,)).tolist() for n in (23, 40, 5, 1, 60, 33, 33, 100, 128)]
    batch = collate([[0, 1, 2], [3, 4], [5, 6, 7], [8]], ids, [3] * 9, [1.0] * 9, [0] * 9, pad_id=1)
    select = batch.targets != -100
    runs = {}
    for attn in ("sdpa", register()):
        model.set_attn_implementation(attn)
        model.zero_grad()
        logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
        torch.nn.functional.cross_entropy(logits[select], batch.targets[select]).backward()
        runs[attn] = logits[select].detach(), [p.grad.clone() for p in model.parameters()]
    (l1, g1), (l2, g2) = runs.values()
    assert (l1 - l2).abs().max() < 1e-4
    assert max((a - b).abs().max().item() for a, b in zip(g1, g2)) < 1e-5


# ----------------------------------------------------------------------------- SFT end to end
def test_student_learns_and_reloads(tiny_model_dir, mix_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    calls = []
    out = tmp_path / "run"
    job = TrainJob(model=str(tiny_model_dir), data=mix_dir, out_dir=str(out),
                   train=_train(tokens=80 * 8 * 128, checkpoint_every=30), seed=0)
    t0 = time.time()
    result = train(job, tracker=lambda metrics, step: calls.append((step, metrics)))
    print(f"80 steps in {time.time() - t0:.1f}s, {result.tokens_per_s:.0f} tok/s")
    assert result.steps == 80 and result.world_size == 1
    assert result.final_loss < 0.5 * result.loss_head[0]
    assert sum(result.loss_tail) / 5 < sum(result.loss_head) / 5 - 1.0
    assert set(result.tokens_per_source) == {"human", "synthetic"} and result.padding_waste < 0.03
    assert result.tokens == sum(result.tokens_per_source.values()) > 0.97 * 80 * 8 * 128

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 81)) == [s for s, _ in calls]
    assert {"loss", "lr", "tokens_per_s", "tokens/human", "tokens/synthetic"} <= set(records[0])
    assert records[-1]["tokens"] == result.tokens
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-30", "step-60"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["result"]["steps"] == 80 and "torch" in meta["versions"]

    assert result.extra["attention"] == "distill_packed"
    config = json.loads((out / "model" / "config.json").read_text())
    assert config.get("use_cache", True) and "distill" not in json.dumps(config)  # a plain model for eval
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    tok = AutoTokenizer.from_pretrained(out / "model")
    assert (out / "model" / "model.safetensors").exists()
    ids = tok("Q:12+34=2+4=6;1+3=4;A:46", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=ids).logits).all()
    assert train(job).final_loss == result.final_loss  # a rerun of a finished job returns its result


def test_zero_weight_examples_do_not_train(tiny_model_dir, world, tmp_path):
    """Two data sets differ only in the text of weight-0 examples (same lengths, so same packing):
    the loss curves must be identical, which needs both the weights and the packing to be right."""
    human = _rows(world, 120)
    junk_a = [{**r, "source": "junk", "weight": 0.0} for r in _rows(world, 120, stream="prompts")]
    junk_b = [{**r, "completion": r["completion"][::-1]} for r in junk_a]
    curves = []
    for name, junk in (("a", junk_a), ("b", junk_b)):
        data = _save(human + junk, tmp_path / name)
        job = TrainJob(model=str(tiny_model_dir), data=data, out_dir=str(tmp_path / f"run-{name}"),
                       train=_train(tokens=6 * 8 * 128))
        train(job)
        curves.append([json.loads(x)["loss"] for x in (tmp_path / f"run-{name}" / "metrics.jsonl").open()])
    assert curves[0] == curves[1]


def test_stop_rule_ends_training_early(tiny_model_dir, mix_dir, tmp_path):
    seen = []

    def stop(model, step: int) -> bool:
        seen.append(step)
        return step == 3

    job = TrainJob(model=str(tiny_model_dir), data=mix_dir, out_dir=str(tmp_path / "run"), train=_train())
    result = train(job, stop=stop)
    assert seen == [1, 2, 3] and result.steps == 3 and len(result.loss_tail) == 3
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()


def test_early_stop_ends_on_held_out_loss_then_anneals(tiny_model_dir, world, tmp_path):
    from distill.recipe.schema import EarlyStop

    data = _save(_rows(world, 16), tmp_path / "few")  # 16 examples: held-out loss soon stops falling
    val = _save(_rows(world, 64, stream="val"), tmp_path / "val")
    cfg = _train(tokens=400 * 8 * 128, lr=1e-2, schedule="constant", warmup_ratio=0.0,
                 early_stop=EarlyStop(every=5, patience=2, cooldown=0.5))
    result = train(TrainJob(model=str(tiny_model_dir), data=data, out_dir=str(tmp_path / "run"), train=cfg,
                            val_data=val))
    info = result.extra["early_stop"]
    assert info["reason"] == "patience" and result.steps == info["stopped_at"] < info["cap"] == 400
    assert info["cooldown_start"] + math.ceil(0.5 * info["cooldown_start"]) == result.steps
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    checks = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in checks] == list(range(5, info["cooldown_start"] + 1, 5))
    assert min(r["val_loss"] for r in checks) == pytest.approx(info["best_val_loss"])
    assert records[-1]["lr"] < 0.1 * cfg.lr and math.isfinite(info["final_val_loss"])
    with pytest.raises(ValueError, match="needs validation data"):
        train(TrainJob(model=str(tiny_model_dir), data=data, out_dir=str(tmp_path / "no-val"), train=cfg))


@pytest.mark.parametrize("source", ["stored", "online"])
def test_kd_mixes_kl_with_ce(tiny_model_dir, world, tmp_path, source):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = _rows(world, 60)
    teacher = None
    if source == "stored":  # store the (random) tiny model's own top-4 as the teacher's
        tok = AutoTokenizer.from_pretrained(tiny_model_dir)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
        for r in rows:
            p = tok(r["prompt"]).input_ids
            c = tok(r["completion"], add_special_tokens=False).input_ids + [tok.eos_token_id]
            with torch.no_grad():
                lp = torch.log_softmax(model(input_ids=torch.tensor([p + c])).logits[0], -1)
            top = lp[len(p) - 1:len(p) + len(c) - 1].topk(4, -1)
            r["teacher_topk_ids"], r["teacher_topk_logprobs"] = top.indices.tolist(), top.values.tolist()
    else:
        teacher = str(tiny_model_dir)
    data = _save(rows, tmp_path / "kd")
    kd = KD(weight=0.5, kind="reverse" if source == "online" else "forward", source=source, temperature=2.0)
    job = TrainJob(model=str(tiny_model_dir), data=data, out_dir=str(tmp_path / "run"),
                   train=_train(tokens=8 * 8 * 128, kd=kd), teacher=teacher)
    result = train(job)
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    # the student starts as the teacher: KL 0, so the loss is half the CE
    assert first["kl"] == pytest.approx(0.0, abs=1e-5)
    assert first["loss"] == pytest.approx(0.5 * first["ce"], rel=1e-5)
    assert result.final_loss < first["loss"]


# ----------------------------------------------------------------------------- kill -9 and resume
def _launch(job_json: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, "-m", "distill.training.launch", str(job_json)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model" / "model.safetensors")


def test_kill_and_resume_matches_an_uninterrupted_run(tiny_model_dir, mix_dir, tmp_path):
    """Tolerance: exact on CPU (same threads, same op order); asserted at 1e-6."""
    train_cfg = _train(tokens=60 * 8 * 128, checkpoint_every=10)
    jobs = {}
    for name in ("straight", "killed"):
        jobs[name] = TrainJob(model=str(tiny_model_dir), data=mix_dir, out_dir=str(tmp_path / name),
                              train=train_cfg, seed=7)
        jobs[name].save(tmp_path / f"{name}.json")
    straight = _launch(tmp_path / "straight.json")
    victim = _launch(tmp_path / "killed.json")
    ckpt = tmp_path / "killed" / "checkpoints" / "step-10"
    deadline = time.time() + 120
    while not ckpt.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert ckpt.exists() and not (tmp_path / "killed" / "result.json").exists(), "killed before the end"
    assert straight.wait(timeout=300) == 0, straight.stdout.read()
    resumed = _launch(tmp_path / "killed.json")
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()

    a = json.loads((tmp_path / "straight" / "result.json").read_text())
    b = json.loads((tmp_path / "killed" / "result.json").read_text())
    assert b["resumed_from"] >= 10 and a["resumed_from"] == 0
    assert abs(a["final_loss"] - b["final_loss"]) <= 1e-6
    steps = [json.loads(x)["step"] for x in (tmp_path / "killed" / "metrics.jsonl").open()]
    assert steps == list(range(1, 61))
    wa, wb = _weights(tmp_path / "straight"), _weights(tmp_path / "killed")
    assert wa.keys() == wb.keys()
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) <= 1e-6


# ----------------------------------------------------------------------------- lm-eval can read it
def test_student_runs_under_the_lm_eval_cli(tiny_model_dir, mix_dir, world, tmp_path):
    out = tmp_path / "run"
    train(TrainJob(model=str(tiny_model_dir), data=mix_dir, out_dir=str(out),
                   train=_train(tokens=2 * 8 * 128)))
    tests = [{"question": r["prompt"], "answer": r["meta"]["answer"]}
             for r in map(record, problems(world, "test", 4))]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tests))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "smoke_arith.yaml").write_text(
        "task: smoke_arith\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {tmp_path / 'test.jsonl'}\n"
        "test_split: test\noutput_type: generate_until\ndoc_to_text: '{{question}}'\n"
        "doc_to_target: '{{answer}}'\ngeneration_kwargs:\n  until: ['<|endoftext|>']\n  max_gen_toks: 16\n"
        "metric_list:\n  - metric: exact_match\nmetadata:\n  version: 1\n")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf")}
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={out / 'model'}",
           "--tasks", "smoke_arith", "--include_path", str(tmp_path / "tasks"), "--device", "cpu",
           "--batch_size", "4", "--output_path", str(tmp_path / "eval")]
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "exact_match" in done.stdout
