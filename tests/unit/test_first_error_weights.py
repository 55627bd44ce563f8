"""First-error rows learn only the steps before the expert's mark: loss weight 0 from the first wrong
step on (and on the EOS), checked on packed batches as the trainer builds them.
Run: pytest tests/unit/test_first_error_weights.py -q"""
from __future__ import annotations

import pytest
from datasets import Dataset

from distill.human.expert import step_offset
from distill.models import train_tokenizer
from distill.recipe.schema import ArithmeticWorld
from distill.training.data import load_corpus
from distill.training.packing import IGNORE, collate, n_learnable, pack
from distill.world.arithmetic import tokenizer_corpus

pytestmark = pytest.mark.unit

ROWS = [  # (prompt, draft, index of the first wrong step or None)
    ("Q:59+99=", "9+9=18;5+9+1=15;A:158", 1),
    ("Q:47+35=", "7+5=12;4+3+1=8;A:82", None),
    ("Q:91-18=", "11-8=4;8-1=7;A:74", 0),
    ("Q:26+13=", "6+3=9;2+1=3;A:39", None),
    ("Q:83-27=", "13-7=6;7-2=5;A:57", 2),
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(tokenizer_corpus(ArithmeticWorld(min_digits=2, max_digits=2), 300))


def test_n_learnable_counts_targets_before_the_cut():
    assert n_learnable(10, 4, None) == 6
    assert n_learnable(10, 4, 2) == 2 and n_learnable(10, 4, 0) == 0 and n_learnable(10, 4, 99) == 6
    assert n_learnable(10, 0, 3) == 2  # no prompt: the first token is never a target


def test_weights_are_zero_from_the_first_wrong_step_on_in_the_packed_batch(tmp_path, tokenizer):
    cuts = [-1 if k is None else step_offset(draft, k) for _, draft, k in ROWS]
    Dataset.from_list([{"prompt": p, "completion": c, "source": "first_error", "weight": 2.0,
                        "learn_chars": cut}
                       for (p, c, _), cut in zip(ROWS, cuts)]).save_to_disk(str(tmp_path / "mix"))
    corpus = load_corpus(tmp_path / "mix", tokenizer, seq_len=256)
    rows = pack(corpus.lengths, 256)
    assert len(rows) == 1 and sorted(rows[0]) == list(range(len(ROWS)))  # one packed row holds every example
    batch = collate(rows, corpus.ids, corpus.n_prompt, corpus.weights, corpus.source_index,
                    tokenizer.pad_token_id or 0, learn=corpus.learn)
    start = 0
    for i in rows[0]:
        _, draft, k = ROWS[i]
        n, p = len(corpus.ids[i]), corpus.n_prompt[i]
        w = batch.weights[0, start + p - 1:start + n - 1]  # weights of the completion tokens and the EOS
        assert (batch.targets[0, start + p - 1:start + n - 1] != IGNORE).all()  # still targets, just weight 0
        learned = len(tokenizer(draft[:step_offset(draft, k)], add_special_tokens=False)["input_ids"]) \
            if k is not None else n - p
        assert w[:learned].tolist() == [2.0] * learned, (draft, k)
        assert w[learned:].sum().item() == 0.0, (draft, k)  # from the wrong step on, EOS included
        start += n
    assert corpus.loss_weight(rows) == pytest.approx(float(batch.weights.sum()))


def test_without_marks_every_completion_token_and_the_eos_learn(tmp_path, tokenizer):
    Dataset.from_list([{"prompt": p, "completion": c}
                       for p, c, _ in ROWS]).save_to_disk(str(tmp_path / "plain"))
    corpus = load_corpus(tmp_path / "plain", tokenizer, seq_len=256)
    assert corpus.learn is None
    rows = pack(corpus.lengths, 256)
    batch = collate(rows, corpus.ids, corpus.n_prompt, corpus.weights, corpus.source_index, 0,
                    learn=corpus.learn)
    expected = sum(len(corpus.ids[i]) - corpus.n_prompt[i] for i in rows[0])
    assert float(batch.weights.sum()) == expected
