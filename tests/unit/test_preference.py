"""Preference losses (DPO sigmoid, APO-zero) against TRL's DPOTrainer on the same models and batch,
the frozen reference, and two preference steps of the student trainer.

Run: pytest tests/unit/test_preference.py -q
"""
from __future__ import annotations

import math

import pytest
import torch

from distill.training import losses

pytestmark = pytest.mark.unit


def _pairs(world, count: int = 8) -> list[dict]:
    """Right solutions over ones whose last column is off by one: what a pick of two drafts keeps."""
    from distill.world.arithmetic import problems, solve

    out = []
    for p in problems(world, "teacher", count):
        right = solve(p.a, p.op, p.b)
        wrong = right.rsplit("A:", 1)[0] + f"A:{int(p.answer) + 1}"
        out.append({"prompt": p.prompt, "chosen": right, "rejected": wrong})
    return out


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_preference_losses_written_out():
    pc, pr, rc, rr = (torch.tensor(v, dtype=torch.float64) for v in ([-3.0, -1.0], [-2.0, -5.0],
                                                                     [-2.5, -1.5], [-2.5, -4.0]))
    beta = 0.3
    dpo = losses.preference("dpo", pc, pr, rc, rr, beta)
    apo = losses.preference("apo", pc, pr, rc, rr, beta)
    for i in range(2):
        c, r = pc[i].item() - rc[i].item(), pr[i].item() - rr[i].item()
        assert dpo[i].item() == pytest.approx(-math.log(_sigmoid(beta * (c - r))), rel=1e-9)
        assert apo[i].item() == pytest.approx(1 - _sigmoid(beta * c) + _sigmoid(beta * r), rel=1e-9)
    with pytest.raises(ValueError, match="objective='ipo'"):
        losses.preference("ipo", pc, pr, rc, rr, beta)


def test_completion_logps_sum_only_completion_tokens():
    torch.manual_seed(0)
    logits = torch.randn(1, 5, 7, dtype=torch.float64)
    ids = torch.tensor([[1, 2, 3, 4, 0]])
    labels = torch.tensor([[-100, -100, 3, 4, -100]])  # prompt 1,2; completion 3,4; padding
    lp = torch.log_softmax(logits, -1)
    want = lp[0, 1, ids[0, 2]] + lp[0, 2, ids[0, 3]]
    assert losses.completion_logps(logits, labels).item() == pytest.approx(want.item(), rel=1e-6)  # float32


@pytest.mark.parametrize("objective,loss_type", [("dpo", "sigmoid"), ("apo", "apo_zero")])
def test_loss_equals_trl_dpo_trainer(objective, loss_type, world, tiny_model_dir, teacher_dir, tmp_path):
    """TRL's own compute_loss on its own collated batch; ours on the same batch and the same models."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from distill.models import load_model, load_tokenizer
    from distill.training.preference import pair_losses

    tokenizer = load_tokenizer(str(tiny_model_dir))
    policy, reference = load_model(str(teacher_dir)), load_model(str(tiny_model_dir))
    args = DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, beta=0.25,
                     loss_type=[loss_type],
                     report_to=[], use_cpu=True, max_length=128)
    trainer = DPOTrainer(model=policy, ref_model=reference, args=args,
                         train_dataset=Dataset.from_list(_pairs(world)),
                         processing_class=tokenizer)
    inputs = next(iter(trainer.get_train_dataloader()))
    policy.eval()  # no dropout in either: both sides see the same logits
    with torch.no_grad():
        theirs = trainer.compute_loss(trainer.model, inputs).item()
        batch = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"],
                 "labels": inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)}
        ours, _ = pair_losses(policy, reference, batch, objective, 0.25)
    assert abs(ours.mean().item() - theirs) < 1e-5, (ours.mean().item(), theirs)
    assert theirs > 0.0


def test_reference_receives_no_gradient(world, tiny_model_dir, teacher_dir):
    from distill.models import load_model, load_tokenizer
    from distill.training.preference import collate_pairs, pair_losses

    tok = load_tokenizer(str(tiny_model_dir))
    policy, reference = load_model(str(teacher_dir)), load_model(str(tiny_model_dir))
    reference.requires_grad_(False)
    rows = _pairs(world, 4)
    prompts = tok([r["prompt"] for r in rows])["input_ids"]
    seqs = [p + tok(r[s], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            for s in ("chosen", "rejected") for p, r in zip(prompts, rows)]
    batch = collate_pairs(seqs, [len(p) for p in prompts] * 2, tok.pad_token_id)
    loss, _ = pair_losses(policy, reference, batch, "dpo", 0.1)
    loss.sum().backward()
    assert all(p.grad is None for p in reference.parameters())
    assert sum(float(p.grad.abs().sum()) for p in policy.parameters() if p.grad is not None) > 0


def test_two_dpo_steps_of_the_student_trainer(world, tiny_model_dir, tmp_path):
    import json

    from datasets import Dataset

    from distill.recipe.schema import Train
    from distill.training import TrainJob, train

    Dataset.from_list(_pairs(world, 8)).save_to_disk(str(tmp_path / "pairs"))
    job = TrainJob(model=str(tiny_model_dir), data=str(tmp_path / "pairs"), out_dir=str(tmp_path / "out"),
                   train=Train(epochs=1, global_batch_size=4, micro_batch_size=2, lr=1e-2, warmup_ratio=0.0),
                   objective="dpo", beta=0.5)
    result = train(job)
    records = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert result.steps == 2 and [r["step"] for r in records] == [1, 2]
    # step 1: policy == reference, so every margin is 0 and the loss is log 2
    assert records[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert records[1]["margin"] != 0.0
    assert result.extra["objective"] == "dpo" and (tmp_path / "out" / "model" / "config.json").exists()
    assert TrainJob.load(tmp_path / "out" / "job.json").objective == "dpo"
