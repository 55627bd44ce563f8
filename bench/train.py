"""Training throughput: distill's trainer against TRL's SFTTrainer, same model, data, batch and steps.

Run: python bench/train.py                 (about 10 minutes on 2 CPU cores)
     python bench/train.py --steps 30 --rounds 5 --hidden 256 --layers 4

Both train the same randomly initialised Llama on the same arithmetic prompt/completion rows
(completion-only loss, EOS appended, weight 1), AdamW, cosine schedule, one process, no
accumulation, float32 and no activation recomputation for both (TRL's SFTConfig defaults to bf16
and gradient checkpointing; both are switched off here). Each trainer runs in its own subprocess
(accelerate's state is per process), in alternating order over several rounds; the table shows the
median round.

Throughput is real (non-padding) tokens per second of the median step among steps 2..N (step 1 is
warm-up), timed from step end to step end, so data loading and collation count for both. One torch
thread per run by default: on a shared machine a descheduled second thread stalls every matmul.
Same effective tokens per step:
- distill: `global_batch_size` packed rows of `seq_len` (its own packer, ~1-2% padding);
- TRL packed: `packing=True` (its default BFD strategy, which TRL runs padding-free: the batch is
  flattened into one sequence whose block-diagonal mask transformers builds from position ids;
  without flash-attention that mask is quadratic in the whole batch) with the same number of rows
  of `max_length = seq_len`;
- TRL padded: `packing=False`, examples padded to the longest in the batch, with as many examples
  per batch as distill's rows hold on average;
- TRL grouped: the same with `train_sampling_strategy="group_by_length"` (batches of similar
  lengths, so less padding; the order is then no longer random).
Padding waste = padded slots / computed slots (0 for a padding-free batch by construction; the
BFD rows' unused capacity is shown separately as "row fill").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("distill", "trl-packed", "trl-padded", "trl-grouped")


def make_inputs(folder: Path, hidden: int, layers: int, examples: int) -> tuple[str, str]:
    from datasets import Dataset

    from distill.models import init_llama, save_pretrained, train_tokenizer
    from distill.recipe.schema import Arch, ArithmeticWorld
    from distill.world.arithmetic import problems, record, tokenizer_corpus

    world = ArithmeticWorld()
    tok = train_tokenizer(tokenizer_corpus(world, 1000))
    arch = Arch(hidden_size=hidden, num_layers=layers, num_heads=max(1, hidden // 64),
                max_position_embeddings=512)
    model_dir = save_pretrained(init_llama(arch, tok, seed=0), tok, folder / "model")
    rows = [record(p) for p in problems(world, "human", examples // 2)]
    rows += [record(p, origin="synthetic") for p in problems(world, "prompts", examples - examples // 2)]
    data = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"],
                               "source": r["origin"], "weight": 1.0} for r in rows])
    data.save_to_disk(str(folder / "data"))
    return str(model_dir), str(folder / "data")


def throughput(ends: list[float], tokens: list[int]) -> float:
    """Median over steps 2..N of the step's tokens / the time from the previous step's end to its end.

    The median, not the total, because the benchmark machine is shared: a neighbour's burst slows a
    few steps of one run, not the typical step."""
    return statistics.median(t / (b - a) for t, a, b in zip(tokens[1:], ends, ends[1:]))


def run_distill(args) -> dict:
    from distill.recipe.schema import Train
    from distill.training import TrainJob, train

    ends, tokens = [], []

    def tracker(metrics: dict, step: int) -> None:
        ends.append(time.perf_counter())
        tokens.append(metrics["tokens"] - (sum(tokens) if tokens else 0))

    cfg = Train(tokens=args.steps * args.rows * args.seq_len, seq_len=args.seq_len,
                global_batch_size=args.rows,
                micro_batch_size=args.rows, lr=3e-3, warmup_ratio=0.1, checkpoint_every=10**6,
                log_every=10**6)
    out = tempfile.mkdtemp(prefix="distill-", dir=Path(args.model).parent)
    result = train(TrainJob(model=args.model, data=args.data, out_dir=out, train=cfg), tracker=tracker)
    return {"tokens_per_s": throughput(ends, tokens), "tokens_per_step": statistics.mean(tokens),
            "padding_waste": result.padding_waste, "row_fill": None, "final_loss": result.final_loss,
            "steps": len(ends)}


class _Counting:
    """Wraps TRL's collator to count computed and non-padding slots of every batch."""

    def __init__(self, inner, pad_id: int):
        self.inner, self.pad_id, self.batches = inner, pad_id, []

    def __call__(self, examples):
        batch = self.inner(examples)
        ids = batch["input_ids"]
        real = (int(batch["attention_mask"].sum()) if "attention_mask" in batch
                else int((ids != self.pad_id).sum()))
        self.batches.append((ids.numel(), real))
        return batch


def run_trl(args, packed: bool, grouped: bool = False) -> dict:
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    data = load_from_disk(args.data).select_columns(["prompt", "completion"])
    tok = AutoTokenizer.from_pretrained(args.model)
    tok.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(args.model)
    batch = args.rows if packed else args.examples_per_step
    cfg = SFTConfig(output_dir=tempfile.mkdtemp(prefix="trl-", dir=Path(args.model).parent),
                    max_steps=args.steps,
                    per_device_train_batch_size=batch, gradient_accumulation_steps=1, learning_rate=3e-3,
                    lr_scheduler_type="cosine", warmup_steps=0.1, max_length=args.seq_len, packing=packed,
                    use_cpu=True, save_strategy="no", report_to=[], logging_steps=1, disable_tqdm=True,
                    dataloader_num_workers=0, seed=0, adam_beta2=0.95,
                    bf16=False, gradient_checkpointing=False,
                    # TRL defaults both on; distill runs fp32, no recompute
                    train_sampling_strategy="group_by_length" if grouped else "random")
    ends: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, *a, **k):
            ends.append(time.perf_counter())

    trainer = SFTTrainer(model=model, args=cfg, train_dataset=data, processing_class=tok, callbacks=[Timer()])
    counting = _Counting(trainer.data_collator, tok.pad_token_id)
    trainer.data_collator = counting
    trainer.train()
    final_loss = [x["loss"] for x in trainer.state.log_history if "loss" in x][-1]
    computed = [c for c, _ in counting.batches[:len(ends)]]
    real = [r for _, r in counting.batches[:len(ends)]]
    fill = None
    if packed:
        lengths = [len(x) for x in trainer.train_dataset["input_ids"]]
        fill = sum(lengths) / (len(lengths) * args.seq_len)
    return {"tokens_per_s": throughput(ends, real), "tokens_per_step": statistics.mean(real),
            "padding_waste": 1 - sum(real) / sum(computed), "row_fill": fill, "final_loss": final_loss,
            "steps": len(ends)}


def one(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.kind == "distill":
        result = run_distill(args)
    else:
        result = run_trl(args, packed=args.kind == "trl-packed", grouped=args.kind == "trl-grouped")
    print("RESULT " + json.dumps(result), flush=True)


def child(args, kind: str) -> dict:
    argv = [sys.executable, __file__, "--one", kind, "--model", args.model, "--data", args.data,
            "--steps", str(args.steps), "--rows", str(args.rows), "--seq-len", str(args.seq_len),
            "--examples-per-step", str(args.examples_per_step), "--threads", str(args.threads)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def examples_per_step(data: str, model: str, rows: int, seq_len: int) -> int:
    """Examples that distill's packed rows hold per step on average (for the padded TRL run)."""
    from transformers import AutoTokenizer

    from distill.training.data import load_corpus

    corpus = load_corpus(data, AutoTokenizer.from_pretrained(model), seq_len)
    mean = sum(corpus.lengths) / len(corpus.lengths)
    return max(1, round(rows * seq_len * 0.985 / mean))


def table(results: dict[str, list[dict]]) -> str:
    med = {k: sorted(v, key=lambda r: r["tokens_per_s"])[len(v) // 2] for k, v in results.items()}
    base = med["distill"]["tokens_per_s"]
    header = (f"{'trainer':<12} {'tokens/s':>10} {'distill x':>10} {'tok/step':>9} {'pad waste':>10} "
              f"{'row fill':>9} {'loss':>7}  rounds (tokens/s)")
    lines = [header]
    for kind, r in med.items():
        fill = "-" if r["row_fill"] is None else f"{r['row_fill']:.3f}"
        rounds = ", ".join(f"{x['tokens_per_s']:.0f}" for x in results[kind])
        lines.append(f"{kind:<12} {r['tokens_per_s']:>10.0f} {base / r['tokens_per_s']:>10.2f} "
                     f"{r['tokens_per_step']:>9.0f} {r['padding_waste']:>10.3f} {fill:>9} "
                     f"{r['final_loss']:>7.3f}  {rounds}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per run")
    parser.add_argument("--rows", type=int, default=16, help="packed rows per step (global batch)")
    parser.add_argument("--seq-len", type=int, default=256, help="row length in tokens")
    parser.add_argument("--hidden", type=int, default=128, help="model width (heads of 64)")
    parser.add_argument("--layers", type=int, default=4, help="model depth")
    parser.add_argument("--examples", type=int, default=4000, help="rows of training data")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is shown")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--one", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--examples-per-step", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        args.kind = args.one
        return one(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = Path(tempfile.mkdtemp(prefix="bench-train-"))
    args.model, args.data = make_inputs(folder, args.hidden, args.layers, args.examples)
    args.examples_per_step = examples_per_step(args.data, args.model, args.rows, args.seq_len)
    print(f"model: Llama hidden {args.hidden} x {args.layers} layers; {args.steps} steps of "
          f"{args.rows} rows x "
          f"{args.seq_len} tokens (TRL padded: {args.examples_per_step} examples/step); "
          f"{args.threads} threads; {args.rounds} rounds", flush=True)
    results: dict[str, list[dict]] = {k: [] for k in KINDS}
    try:
        for r in range(args.rounds):
            for kind in KINDS if r % 2 == 0 else KINDS[::-1]:
                results[kind].append(child(args, kind))
                print(f"  round {r + 1} {kind}: {results[kind][-1]['tokens_per_s']:.0f} tokens/s", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(table(results))


if __name__ == "__main__":
    main()
