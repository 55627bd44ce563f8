"""The embedded teacher's build never looks at a test-split prompt (it stops on the validation split).

Run: .venv/bin/python -m pytest tests/smoke/test_teacher_split.py -q
"""
import pytest

pytestmark = pytest.mark.smoke


def test_teacher_build_stops_on_validation_and_reads_no_test_prompt(world, tiny_model_dir, tmp_path,
                                                                    monkeypatch):
    from distill.recipe.schema import Arch, TeacherBuild
    from distill.sources import load_source
    from distill.world import arithmetic as ar
    from distill.world import teacher

    seen: list[str] = []
    real = teacher.greedy_accuracy

    def recording(model, tokenizer, rows, extract, **kw):  # the real evaluation, with its prompts noted
        seen.extend(r["prompt"] for r in rows)
        return real(model, tokenizer, rows, extract, **kw)

    monkeypatch.setattr(teacher, "greedy_accuracy", recording)
    build = TeacherBuild(arch=Arch(hidden_size=64, num_layers=2, num_heads=2), corpus_size=300, max_steps=4,
                         batch_size=8, eval_every=2, eval_size=30, target_accuracy=1.0)
    out = teacher.build_teacher(world, build, tiny_model_dir, tmp_path / "teacher", threads=1)
    test = {p.prompt for p in ar.problems(world, "test", world.test_size)}
    val = [p.prompt for p in ar.problems(world, "val", 30)]
    assert [s for s, _ in out["accuracy_history"]] == [2, 4]
    assert seen == val + val  # two checks, each on the first eval_size validation problems
    assert not test & set(seen)
    corpus = load_source(tmp_path / "teacher" / "corpus")
    assert len(corpus) == 300 and not test & set(corpus["prompt"])


def test_teacher_build_refuses_a_world_without_validation_split(world, tiny_model_dir, tmp_path):
    from distill.recipe.schema import TeacherBuild
    from distill.world import teacher

    with pytest.raises(ValueError, match="world.val_size=0"):
        teacher.build_teacher(world.model_copy(update={"val_size": 0}), TeacherBuild(), tiny_model_dir,
                              tmp_path, threads=1)
