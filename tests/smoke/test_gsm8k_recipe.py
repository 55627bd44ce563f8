"""The GSM8K recipe end to end, offline: the real recipe file with overrides pointing the teacher and
student at tiny local models and the datasets at small local files in GSM8K's schema
(question / answer ending in ``#### n``), through the real field mapping, verifier, answer
extraction and an lm-eval task in gsm8k's format, to a report.
Run: pytest tests/smoke/test_gsm8k_recipe.py -q"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from distill.cli import main
from distill.recipe import load_recipe
from distill.world import build_task

pytestmark = pytest.mark.smoke
ROOT = Path(__file__).resolve().parents[2]
NAMES = ["Natalia", "Weng", "Betty", "Julie", "James", "Albert", "Ken", "Alexis"]
THINGS = ["clips", "apples", "books", "pens", "eggs", "stamps"]


def gsm8k_rows(count: int, seed: int) -> list[dict]:
    """GSM8K-shaped rows: a word problem and a worked answer with ``<<a+b=c>>`` and ``#### c``."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        name, thing = rng.choice(NAMES), rng.choice(THINGS)
        a, b = rng.randint(2, 90), rng.randint(2, 90)
        total = a + b
        rows.append({
            "question": f"{name} has {a} {thing} and gets {b} more. How many {thing} does {name} have?",
            "answer": f"{name} has {a} + {b} = <<{a}+{b}={total}>>{total} {thing}.\n#### {total:,}",
        })
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


LOCAL_TASK = """task: gsm8k_local
dataset_path: json
dataset_kwargs:
  data_files: {{test: {test}}}
output_type: generate_until
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["Question:"]
  do_sample: false
  max_gen_toks: 48
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "#### (\\\\-?[0-9\\\\.\\\\,]+)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    regexes_to_ignore: [",", "\\\\$", "(?s).*#### ", "\\\\.$"]
metadata:
  version: 3.0
"""


@pytest.fixture(scope="module")
def gsm8k_files(tmp_path_factory):
    from distill.models import init_llama, save_pretrained, train_tokenizer
    from distill.recipe.schema import Arch

    root = tmp_path_factory.mktemp("gsm8k")
    train = gsm8k_rows(120, 0)
    test = gsm8k_rows(30, 1)
    files = {"train": write_jsonl(root / "train.jsonl", train),
             "test": write_jsonl(root / "test.jsonl", test)}
    lines = [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in train]
    tok = train_tokenizer(lines, vocab_size=400)
    for name, seed in (("teacher", 1), ("student", 2)):
        model = init_llama(Arch(hidden_size=64, num_layers=2, num_heads=2, max_position_embeddings=256), tok,
                           seed)
        files[name] = str(save_pretrained(model, tok, root / name))
    (root / "tasks").mkdir()
    (root / "tasks" / "gsm8k_local.yaml").write_text(LOCAL_TASK.format(test=files["test"]))
    files["tasks"] = str(root / "tasks")
    files["root"] = root
    return files


def local_overrides(f: dict, out: Path) -> list[str]:
    data = lambda split: f"{{path: json, split: train, data_files: {f[split]}}}"
    return [
        f"output_dir={out}", f"teacher.model={f['teacher']}", "teacher.dtype=float32",
        f"student.model={f['student']}", "student.dtype=float32",
        f"world.human={data('train')}", f"world.prompts={data('train')}", f"world.test={data('test')}",
        "world.human_pool=60", "generation.backend=hf", "generation.num_prompts=40",
        "generation.shards=2", "generation.max_new_tokens=24", "generation.temperature=0.0",
        "generation.samples_per_prompt=1", "generation.batch_size=16",
        "generation.filters.decontaminate_ngram=8",
        ("mixes.arms=[{name: human, fraction: 0.0}, {name: synthetic, fraction: 1.0}, {name: hybrid-50, "
         "fraction: 0.5}]"),
        "mixes.sizes=[20, 40]", "mixes.seeds=[0]", "train.tokens=4096", "train.seq_len=128",
        "train.global_batch_size=4", "train.micro_batch_size=4", "train.dtype=float32",
        "train.accelerate_config=null", "train.lr=1e-3",
        f"eval.include_path={f['tasks']}", "eval.tasks=[gsm8k_local]", "eval.max_gen_toks=24",
        "eval.batch_size=16", "report.bootstrap=50", "launcher.workers=2", "tracking.wandb.mode=disabled",
    ]


def test_adapter_reads_gsm8k_schema_and_verifies(gsm8k_files, tmp_path):
    recipe = load_recipe(ROOT / "recipes/gsm8k/hybrid.yaml", local_overrides(gsm8k_files, tmp_path))
    task = build_task(recipe.world)
    human = task.human()
    assert len(human) == 60 and human[0]["prompt"].startswith("Question: ")
    assert human[0]["prompt"].endswith("\nAnswer:") and "####" in human[0]["completion"]
    row = task.prompts(5)[0]
    answer = row["meta"]["answer"]
    assert task.verify(row, f" some steps\n#### {answer}")
    assert not task.verify(row, f" some steps\n#### {int(answer) + 1}")
    assert task.extract_answer("x = 1,234.\n#### 1,234") == "1234"


def test_the_same_overrides_work_on_the_command_line(gsm8k_files, tmp_path, capsys, monkeypatch):
    """What the README says this file shows, typed as `distill` arguments: validate for the local
    launcher and a dry run pass; plain validate names the Slurm-only check and the flag that skips it."""
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    args = [str(ROOT / "recipes/gsm8k/hybrid.yaml"), *local_overrides(gsm8k_files, tmp_path)]
    assert main(["validate", *args, "--launcher", "local"]) == 0
    assert capsys.readouterr().out.startswith("ok: gsm8k-hybrid")
    assert main(["run", *args, "--dry-run"]) == 0
    assert "nothing is written" in capsys.readouterr().out and not (tmp_path / "gsm8k-hybrid").exists()
    assert main(["validate", *args]) == 2  # both launchers: the shipped Slurm section asks 8 GPUs per node
    assert "--launcher local does not read launcher.slurm" in capsys.readouterr().err


def test_the_readme_form_with_relative_files_validates(gsm8k_files, tmp_path, capsys, monkeypatch):
    """The README's inline example: `world.human='{path: json, data_files: train.jsonl}'` (no split, a
    path relative to where `distill` runs)."""
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(gsm8k_files["root"])
    worlds = [f"world.{key}={{path: json, data_files: {name}.jsonl}}"
              for key, name in (("human", "train"), ("prompts", "train"), ("test", "test"))]
    others = [o for o in local_overrides(gsm8k_files, tmp_path) if not o.startswith("world.") or "pool" in o]
    args = [str(ROOT / "recipes/gsm8k/hybrid.yaml"), *others, *worlds]
    assert main(["validate", *args, "--launcher", "local"]) == 0, capsys.readouterr().err
    assert main(["run", *args, "--dry-run"]) == 0, capsys.readouterr().err


def test_gsm8k_recipe_end_to_end_offline(gsm8k_files, tmp_path):
    """Through `distill run`, as a person would type it (not the Python API)."""
    overrides = local_overrides(gsm8k_files, tmp_path)
    assert main(["run", str(ROOT / "recipes/gsm8k/hybrid.yaml"), *overrides]) == 0
    run_dir = tmp_path / load_recipe(ROOT / "recipes/gsm8k/hybrid.yaml", overrides).name
    report = next(run_dir.glob("steps/report-*/report.md"))
    text = report.read_text()
    for arm in ("human", "synthetic", "hybrid-50"):
        assert arm in text
    merge = next(run_dir.glob("steps/merge-*"))
    meta = json.loads((merge / "meta.json").read_text())
    assert "verified" in json.dumps(meta)  # the verifier ran over teacher outputs
