"""Both sides of picks and edits: the pairs the simulated expert's work yields, and a pair set that
TRL's DPOTrainer trains on as exported.

Run: pytest tests/unit/test_pairs.py -q
"""
from __future__ import annotations

import math

import pytest

from distill.human.expert import SimulatedExpert
from distill.human.pairs import preference_pairs, save_pairs
from distill.human.primitives import drafts_by_prompt, simulate
from distill.recipe.schema import ExpertTimes
from distill.sources import meta_of, normalise
from distill.world.arithmetic import problems, solve

pytestmark = pytest.mark.unit
TIMES = ExpertTimes(write_s=30, edit_s=18, mark_s=12, pick_s=6)


def _drafts(world, count: int = 8) -> list[dict]:
    """Two drafts per prompt: a wrong one (last answer off by one, or right for every third), then a right
    one."""
    rows = []
    for i, p in enumerate(problems(world, "teacher", count)):
        right = solve(p.a, p.op, p.b)
        wrong = right if i % 3 == 2 else right.rsplit("A:", 1)[0] + f"A:{int(p.answer) + 1}"
        for sample, text in enumerate((wrong, right)):
            rows.append(normalise({"id": f"{p.id}#{sample}", "prompt": p.prompt, "completion": text,
                                   "origin": "synthetic", "meta": {"answer": p.answer, "prompt_id": p.id,
                                                                   "sample": sample}}))
    return rows


@pytest.mark.parametrize("primitive", ["picked", "edited"])
def test_pairs_keep_both_sides_and_drop_unchanged_ones(world, primitive):
    drafts = _drafts(world)
    work = simulate(primitive, drafts_by_prompt(drafts, meta_of), SimulatedExpert(TIMES), meta_of, 8)
    pairs = preference_pairs(primitive, work.rows, drafts)
    by_id = {d["id"]: d["completion"] for d in drafts}
    right = {p.prompt: solve(p.a, p.op, p.b) for p in problems(world, "teacher", 8)}
    # every third prompt's drafts are both right: picks between twins and edits that change nothing
    assert len(pairs) == len([i for i in range(8) if i % 3 != 2])
    for pair in pairs:
        assert pair["chosen"] != pair["rejected"] and pair["rejected"] in by_id.values()
        assert pair["chosen"] == right[pair["prompt"]]  # an error-free expert keeps the right side
        assert pair["human_s"] == {"picked": 6, "edited": 18}[primitive]


def test_a_pick_naming_an_unknown_draft_is_an_error(world):
    drafts = _drafts(world, 2)
    work = simulate("picked", drafts_by_prompt(drafts, meta_of), SimulatedExpert(TIMES), meta_of, 2)
    with pytest.raises(ValueError, match="rejected_id="):
        preference_pairs("picked", work.rows, drafts[:1])
    with pytest.raises(ValueError, match="keeps no pairs"):
        preference_pairs("first_error", work.rows, drafts)


def test_exported_pairs_train_two_steps_in_trl(world, tiny_model_dir, tmp_path):
    from datasets import load_from_disk
    from trl import DPOConfig, DPOTrainer

    from distill.models import load_model, load_tokenizer

    drafts = _drafts(world)
    work = simulate("picked", drafts_by_prompt(drafts, meta_of), SimulatedExpert(TIMES), meta_of, 8)
    save_pairs(preference_pairs("picked", work.rows, drafts), tmp_path / "pairs")
    data = load_from_disk(str(tmp_path / "pairs"))  # as exported: no column renamed or dropped
    args = DPOConfig(output_dir=str(tmp_path / "trl"), per_device_train_batch_size=2, max_steps=2,
                     learning_rate=1e-2, report_to=[], use_cpu=True, save_strategy="no", logging_steps=1)
    trainer = DPOTrainer(model=load_model(str(tiny_model_dir)), args=args, train_dataset=data,
                         processing_class=load_tokenizer(str(tiny_model_dir)))
    out = trainer.train()
    assert out.global_step == 2
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    assert len(losses) == 2 and all(math.isfinite(v) and v > 0 for v in losses)
