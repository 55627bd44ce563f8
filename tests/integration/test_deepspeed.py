"""Two CPU processes under DeepSpeed ZeRO-2 / ZeRO-3 (and plain DDP) train the same student as one.

Run: pytest tests/integration/test_deepspeed.py -q     (about 2-3 minutes on 2 cores)
The first DeepSpeed process group on a machine JIT-builds a comm op (40-200 s, once); it is cached
in TORCH_EXTENSIONS_DIR (default ~/.cache/torch_extensions), which these tests leave alone.

Each multi-process run is compared step by step with the same job in one process: with the loss
normalised over the global batch, world size and accumulation must not change the result
(measured difference ~2e-7; asserted 1e-5). The preference objective (DPO) is checked the same way
under ZeRO-2: the policy sharded over the ranks, the frozen reference a plain model on each.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from distill.recipe.schema import Train
from distill.training import TrainJob, train
from distill.training.launch import free_port
from distill.world.arithmetic import problems, record

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "recipes" / "accelerate"
STEPS = 24


def _train(steps: int = STEPS, **kw) -> Train:
    return Train(tokens=steps * 8 * 128, seq_len=128, global_batch_size=8, micro_batch_size=2, lr=3e-3,
                 warmup_ratio=0.1, checkpoint_every=10, **kw)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, world) -> str:
    from datasets import Dataset

    rows = [{"prompt": r["prompt"], "completion": r["completion"], "source": src, "weight": w}
            for src, stream, w in (("human", "human", 1.0), ("synthetic", "prompts", 0.5))
            for r in map(record, problems(world, stream, 200))]
    folder = tmp_path_factory.mktemp("data") / "mix"
    Dataset.from_list(rows).save_to_disk(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def reference(tiny_model_dir, data_dir, tmp_path_factory) -> Path:
    """The same job in this process, one rank, accumulation 4."""
    out = tmp_path_factory.mktemp("ref") / "run"
    train(TrainJob(model=str(tiny_model_dir), data=data_dir, out_dir=str(out), train=_train()))
    return out


def _losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def _command(launcher: str, config: str, job_json: Path) -> list[str]:
    if launcher == "torchrun":  # the job names the config; distill reads it in every process
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_port", str(free_port()), "-m", "distill.training.launch", str(job_json)]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / config),
            "--num_processes", "2", "--main_process_port", str(free_port()),
            "-m", "distill.training.launch", str(job_json)]


def _job(tiny_model_dir, data_dir, out: Path, config: str, steps: int = STEPS) -> Path:
    job = TrainJob(model=str(tiny_model_dir), data=data_dir, out_dir=str(out), train=_train(steps),
                   accelerate_config=str(CONFIGS / config))
    return job.save(out.parent / f"{out.name}.json")


@pytest.mark.parametrize("config,launcher", [("zero2.yaml", "accelerate"), ("zero3.yaml", "torchrun"),
                                             ("ddp.yaml", "accelerate")])
def test_two_processes_train_like_one(tiny_model_dir, data_dir, reference, tmp_path, config, launcher):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    out = tmp_path / "run"
    t0 = time.time()
    done = subprocess.run(_command(launcher, config, _job(tiny_model_dir, data_dir, out, config)),
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)
    print(f"{config} via {launcher}: {time.time() - t0:.1f}s")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads((out / "result.json").read_text())
    assert result["world_size"] == 2 and result["extra"]["accumulation"] == 2
    assert result["extra"]["backend"] == {"zero2.yaml": "deepspeed-zero2", "zero3.yaml": "deepspeed-zero3",
                                          "ddp.yaml": "ddp"}[config]
    assert result["extra"]["attention"] == "distill_packed"
    ours, ref = _losses(out), _losses(reference)
    assert len(ours) == STEPS and ours[-1] < ours[0] - 1.0  # loss falls
    assert max(abs(a - b) for a, b in zip(ours, ref)) < 1e-5
    model = AutoModelForCausalLM.from_pretrained(out / "model")  # plain HF folder, safetensors
    ref_weights = load_file(reference / "model" / "model.safetensors")
    for name, tensor in load_file(out / "model" / "model.safetensors").items():
        assert tensor.numel() > 0 and torch.allclose(tensor, ref_weights[name], atol=1e-4), name
    assert torch.isfinite(model(input_ids=torch.tensor([[5, 6, 7]])).logits).all()


def test_train_hands_a_configured_job_to_accelerate_launch(tiny_model_dir, data_dir, reference, tmp_path,
                                                           monkeypatch):
    """``train(job)`` in a plain process with an accelerate config runs ``accelerate launch`` and streams
    the ranks' metrics to the tracker as they are written. The processes come from the environment
    (here DISTILL_PROCESSES_PER_NODE; no GPUs), not from the YAML's num_processes."""
    monkeypatch.setenv("DISTILL_PROCESSES_PER_NODE", "2")
    calls = []
    job = TrainJob(model=str(tiny_model_dir), data=data_dir, out_dir=str(tmp_path / "run"), train=_train(),
                   accelerate_config="recipes/accelerate/ddp.yaml")  # relative: resolved against the checkout
    result = train(job, tracker=lambda metrics, step: calls.append((step, metrics["loss"])))
    assert result.world_size == 2 and result.extra["backend"] == "ddp"
    assert [s for s, _ in calls] == list(range(1, STEPS + 1))
    assert max(abs(a - b) for (_, a), b in zip(calls, _losses(reference))) < 1e-5


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every process it started (workers sit in their own sessions)."""
    parent = psutil.Process(proc.pid)
    for p in [*parent.children(recursive=True), parent]:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def test_zero3_resumes_after_kill(tiny_model_dir, data_dir, reference, tmp_path):
    """kill -9 of the whole process tree after the step-10 checkpoint, then the same command again:
    the resumed run must follow the one-process reference (which runs uninterrupted)."""
    out = tmp_path / "killed"
    cmd = _command("accelerate", "zero3.yaml", _job(tiny_model_dir, data_dir, out, "zero3.yaml"))
    victim = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = out / "checkpoints" / "step-10" / "trainer_state.json"
    deadline = time.time() + 300
    while not marker.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    _kill_tree(victim)
    assert marker.exists() and not (out / "result.json").exists(), "killed before the end"
    done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads((out / "result.json").read_text())
    assert result["resumed_from"] >= 10
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").open()] == list(range(1, STEPS + 1))
    assert max(abs(a - b) for a, b in zip(_losses(out), _losses(reference))) < 1e-5


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory, world) -> str:
    """Preference pairs of the arithmetic world: the right answer chosen, a wrong one rejected."""
    from datasets import Dataset

    rows = []
    for r in map(record, problems(world, "human", 64)):
        wrong = r["completion"].rstrip()[:-1] + str((int(r["completion"].rstrip()[-1]) + 1) % 10)
        rows.append({"prompt": r["prompt"], "chosen": r["completion"], "rejected": wrong})
    folder = tmp_path_factory.mktemp("pairs") / "pairs"
    Dataset.from_list(rows).save_to_disk(str(folder))
    return str(folder)


def test_dpo_under_zero2_with_two_processes_trains_like_one(tiny_model_dir, pairs_dir, tmp_path):
    """The preference objective on the DeepSpeed path: the policy is ZeRO-2-sharded over two ranks, the
    frozen reference is a plain model on each; the losses follow the one-process run step by step."""
    def job(out: Path, config: str | None) -> TrainJob:
        return TrainJob(model=str(tiny_model_dir), data=pairs_dir, out_dir=str(out),
                        train=_train(steps=8), objective="dpo", beta=0.1,
                        reference=str(tiny_model_dir),
                        **({"accelerate_config": str(CONFIGS / config)} if config else {}))

    one = tmp_path / "one"
    train(job(one, None))
    two = tmp_path / "two"
    argv = _command("accelerate", "zero2.yaml", job(two, "zero2.yaml").save(tmp_path / "j.json"))
    done = subprocess.run(argv, check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads((two / "result.json").read_text())
    assert result["world_size"] == 2 and result["extra"]["backend"] == "deepspeed-zero2"
    assert result["extra"]["objective"] == "dpo"
    ours, ref = _losses(two), _losses(one)
    gap = max(abs(a - b) for a, b in zip(ours, ref))
    print(f"dpo, zero2, 2 processes: loss {ours[0]:.4f} -> {ours[-1]:.4f}, max gap to one: {gap:.1e}")
    assert len(ours) == 8 and ours[-1] < ours[0]  # the policy moves toward the chosen side
    assert gap < 1e-5
