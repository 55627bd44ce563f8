"""Mixes at a lab's size: a 1M-example mix planned, written as index arrays and trained a few steps.

Run: python bench/mix_scale.py                      (1M examples; a few minutes on 2 CPU cores)
     python bench/mix_scale.py --examples 20000 --compare 5000 --steps 2

It writes, in a temp folder, a synthetic source of ``--examples`` rows and a human pool of
``--human`` rows (short rows of the embedded arithmetic world, cycled under fresh ids), plans the
hybrid mix of ``--examples`` examples at ``--fraction`` synthetic (``pipeline.mixes.materialise_mix``:
token tables per source, then the mix as index arrays), and trains a tiny Llama for ``--steps``
steps on it in a child process. It prints:
- tokenize throughput, rows per CPU-second, of today's token tables (batched, written to memory-mapped
  arrays) against the old path (``tokenize`` + ``build_example`` into Python lists) on the first
  ``--compare`` rows, in this process, and the old lists' resident memory per row;
- the token tables of both sources: rows per CPU-second, bytes on disk;
- planning and writing the mix: wall seconds and the peak RSS of this process while it ran;
- training: the child's RSS once the model is loaded, its peak, and the peak beyond the model.
The last line is one JSON object with those figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # rows per CPU-second: one core's work, no spinning


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident memory (VmRSS) or its peak (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak() -> None:
    """Restart VmHWM from the current RSS (Linux: clear_refs 5), so a peak belongs to one phase."""
    Path("/proc/self/clear_refs").write_text("5")


def write_source(folder: Path, rows: int, prefix: str, origin: str, base: list[dict]) -> None:
    """``rows`` source rows cycling over ``base`` under fresh ids, built in Arrow chunks of 100k rows."""
    import pyarrow as pa
    from datasets import Dataset, concatenate_datasets

    from distill.sources import FEATURES

    metas = [json.dumps(b["meta"], sort_keys=True) for b in base]
    chunks = []
    for start in range(0, rows, 100_000):
        picks = [i % len(base) for i in range(start, min(rows, start + 100_000))]
        chunks.append(Dataset(pa.Table.from_pydict({
            "id": [f"{prefix}-{start + k}" for k in range(len(picks))],
            "prompt": [base[i]["prompt"] for i in picks],
            "completion": [base[i]["completion"] for i in picks],
            "origin": [origin] * len(picks), "meta": [metas[i] for i in picks]},
            schema=FEATURES.arrow_schema)))
    concatenate_datasets(chunks).save_to_disk(str(folder / "data"), num_shards=1)


def tokenize_old_vs_new(tok, source: Path, rows: int, seq_len: int, rounds: int = 2) -> dict:
    """Rows per CPU-second of the old list path and of the token table, on the same rows (both read
    the text from the source; alternating rounds, the fastest of each kept: the machine is shared)."""
    from distill.sources import load_source
    from distill.training.packing import build_example
    from distill.training.tokens import batches, tokenize, write_table

    data = load_source(source).select(range(rows))
    old_cpu, new_cpu, old_mib = [], [], 0.0
    for _ in range(rounds):
        before, t0 = rss_mib(), time.process_time()
        p_ids, c_ids = tokenize(tok, list(data["prompt"]), list(data["completion"]))
        ids = [build_example(p, c, tok.eos_token_id, seq_len)[0] for p, c in zip(p_ids, c_ids)]
        old_cpu.append(time.process_time() - t0)
        old_mib = max(old_mib, rss_mib() - before)
        del p_ids, c_ids, ids
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.process_time()
            write_table(tok, batches(data, "meta"), Path(tmp), total=rows)
            new_cpu.append(time.process_time() - t0)
    return {"rows": rows, "old_rows_per_cpu_s": rows / min(old_cpu),
            "new_rows_per_cpu_s": rows / min(new_cpu),
            "ratio": min(old_cpu) / min(new_cpu), "old_lists_bytes_per_row": old_mib * 2**20 / rows}


def build(args, work: Path) -> tuple[str, Path, Path]:
    """The tokenizer and tiny student, and the two sources; returns (model, human, merge folder)."""
    from distill.models import init_llama, save_pretrained, train_tokenizer
    from distill.recipe.schema import Arch, ArithmeticWorld
    from distill.world.arithmetic import problems, record, tokenizer_corpus

    world = ArithmeticWorld()
    tok = train_tokenizer(tokenizer_corpus(world, 1000))
    arch = Arch(hidden_size=args.hidden, num_layers=args.layers, num_heads=max(1, args.hidden // 32))
    model = save_pretrained(init_llama(arch, tok, seed=0), tok, work / "model")
    base = [record(p) for p in problems(world, "prompts", min(args.examples, 20000))]
    write_source(work / "human", args.human, "human", "human", base[::-1])
    write_source(work / "merge" / "synthetic", args.examples, "synthetic", "synthetic", base)
    return str(model), work / "human", work / "merge"


def plan_and_write(args, model: str, human: Path, merge: Path, work: Path) -> dict:
    from distill.models import load_tokenizer
    from distill.pipeline.configs import Mix
    from distill.pipeline.mixes import materialise_mix
    from distill.recipe.schema import Arm, ModelSpec, Wall
    from distill.training.tokens import cached_table

    tok = load_tokenizer(model)
    out = {"tokenize": tokenize_old_vs_new(tok, merge / "synthetic", args.compare, args.seq_len)}
    reset_peak()
    t0, cpu0 = time.perf_counter(), time.process_time()
    tables = [cached_table(folder, tok, work / "tokens")[1] for folder in (human, merge / "synthetic")]
    cpu = time.process_time() - cpu0
    out["tables"] = {"rows": args.human + args.examples, "rows_per_cpu_s": (args.human + args.examples) / cpu,
                     "wall_s": time.perf_counter() - t0, "peak_rss_mib": rss_mib("VmHWM"),
                     "mib_on_disk": sum(f.stat().st_size for t in tables for f in t.iterdir()) / 2**20}
    reset_peak()
    t0 = time.perf_counter()
    mix = Mix(arm=Arm(name="hybrid", fraction=args.fraction), n=args.examples, seed=0, unit="examples",
              wall=Wall(), weights={})
    plan, folder = materialise_mix(mix, ModelSpec(model=model), human, merge, work / "mix",
                                   tokens=work / "tokens")
    out["plan"] = {"examples": len(plan.entries), "wall_s": time.perf_counter() - t0,
                   "peak_rss_mib": rss_mib("VmHWM"),
                   "mix_mib_on_disk": sum(f.stat().st_size for f in folder.iterdir()) / 2**20}
    return out


def train_child(job_path: str, report: str) -> None:
    """In the child: load the model once (the baseline), then train; write RSS figures to ``report``."""
    import torch

    from distill.models import load_model
    from distill.training import TrainJob, train

    job = TrainJob.load(job_path)
    model = load_model(job.model)
    params_mib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    base = rss_mib()
    t0 = time.perf_counter()
    result = train(job)
    peak = rss_mib("VmHWM")
    del model, torch
    Path(report).write_text(json.dumps({
        "steps": result.steps, "examples_seen": result.examples, "final_loss": result.final_loss,
        "wall_s": time.perf_counter() - t0, "model_params_mib": params_mib, "rss_with_model_mib": base,
        "peak_rss_mib": peak, "peak_beyond_model_mib": peak - base}))


def train_mix(args, model: str, work: Path) -> dict:
    from distill.recipe.schema import Train
    from distill.training import TrainJob

    cfg = Train(tokens=args.steps * args.rows * args.seq_len, seq_len=args.seq_len,
                global_batch_size=args.rows,
                micro_batch_size=args.rows, checkpoint_every=10**6, log_every=1)
    job = TrainJob(model=model, data=str(work / "mix"), out_dir=str(work / "train"), train=cfg,
                   progress=False)
    job.save(work / "job.json")
    argv = [sys.executable, __file__, "--train-child", str(work / "job.json"), str(work / "train.json")]
    subprocess.run(argv, check=True, cwd=ROOT)
    return json.loads((work / "train.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=1_000_000,
                        help="mix size N, and rows of the synthetic source")
    parser.add_argument("--human", type=int, default=100_000, help="rows of the human pool")
    parser.add_argument("--fraction", type=float, default=0.9, help="synthetic fraction f of the mix")
    parser.add_argument("--compare", type=int, default=50_000,
                        help="rows for the old-vs-new tokenize comparison")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps to train")
    parser.add_argument("--rows", type=int, default=8, help="packed rows per step")
    parser.add_argument("--seq-len", type=int, default=256, help="packed row length")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size of the tiny Llama")
    parser.add_argument("--layers", type=int, default=2, help="layers of the tiny Llama")
    parser.add_argument("--train-child", nargs=2, metavar=("JOB", "REPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_child:
        return train_child(*args.train_child)
    args.compare = min(args.compare, args.examples)
    with tempfile.TemporaryDirectory(prefix="distill-mix-scale-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        model, human, merge = build(args, work)
        print(f"sources written: {args.human:,} human + {args.examples:,} synthetic rows "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        out = {"examples": args.examples, **plan_and_write(args, model, human, merge, work)}
        out["train"] = train_mix(args, model, work)
    tk, tb, pl, tr = out["tokenize"], out["tables"], out["plan"], out["train"]
    print(f"tokenize {tk['rows']:,} rows: tables {tk['new_rows_per_cpu_s']:,.0f} rows/CPU-s, old lists "
          f"{tk['old_rows_per_cpu_s']:,.0f} (x{tk['ratio']:.2f}); old lists hold "
          f"{tk['old_lists_bytes_per_row']:.0f} B/row")
    print(f"token tables, {tb['rows']:,} rows: {tb['rows_per_cpu_s']:,.0f} rows/CPU-s, {tb['wall_s']:.0f} s, "
          f"{tb['mib_on_disk']:.0f} MiB on disk, peak RSS {tb['peak_rss_mib']:.0f} MiB")
    print(f"plan + write the {pl['examples']:,}-example mix: {pl['wall_s']:.0f} s, peak RSS "
          f"{pl['peak_rss_mib']:.0f} MiB, "
          f"{pl['mix_mib_on_disk']:.0f} MiB of index arrays")
    print(f"train {tr['steps']} steps: {tr['wall_s']:.0f} s, RSS with the model "
          f"{tr['rss_with_model_mib']:.0f} MiB, "
          f"peak {tr['peak_rss_mib']:.0f} MiB, beyond the model {tr['peak_beyond_model_mib']:.0f} MiB")
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
