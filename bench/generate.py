"""Tokens/s of the hf generation backend against a naive per-prompt ``model.generate`` loop.

Both run the same model on the same prompts in the same process, greedy, with the KV cache, the
same ``max_new_tokens`` and the same stopping rule (EOS); the script asserts their outputs are
identical, then prints a table. By default the model is the tests' tiny Llama (hidden 64, 2 layers,
byte-level BPE trained on the arithmetic world) with weights scaled x6 so its greedy outputs differ
between prompts and some stop early at EOS; ``--model`` benchmarks any local model instead.

Run: python bench/generate.py [--prompts 128] [--max-new-tokens 32] [--batch-sizes 16 64] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from transformers import GenerationConfig

from distill.generation.backends import Sampling, requests_for
from distill.generation.backends.hf import HFBackend
from distill.recipe.schema import Arch, ArithmeticWorld, Generation, ModelSpec
from distill.world import build_task


def tiny_teacher(folder: str) -> str:
    from distill.models import init_llama, save_pretrained, train_tokenizer
    from distill.world.arithmetic import tokenizer_corpus

    world = ArithmeticWorld(human_pool=200, test_size=100)
    tok = train_tokenizer(tokenizer_corpus(world, 500))
    model = init_llama(Arch(hidden_size=64, num_layers=2, num_heads=2), tok, seed=0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.mul_(6.0)
    return str(save_pretrained(model, tok, os.path.join(folder, "tiny")))


def naive(backend: HFBackend, prompts: list[str], max_new_tokens: int) -> list[tuple[str, int, str]]:
    """The baseline: one ``generate`` call per prompt, no padding, same config and decoding."""
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                              eos_token_id=backend.eos_ids, pad_token_id=backend.pad_id, use_cache=True)
    out = []
    for prompt in prompts:
        ids = backend.tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            seq = backend.model.generate(**ids,
                                         generation_config=config)[0, ids["input_ids"].shape[1]:].tolist()
        stop = next((i for i, t in enumerate(seq) if t in backend.eos_ids), None)
        text = backend.tokenizer.decode(seq if stop is None else seq[:stop], skip_special_tokens=True)
        out.append((text, len(seq) if stop is None else stop + 1, "length" if stop is None else "stop"))
    return out


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="local model folder (default: the tiny test teacher)")
    parser.add_argument("--prompts", type=int, default=128, help="number of arithmetic-world prompts")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="generation budget per prompt")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64], help="hf backend batch sizes")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        backend = HFBackend(ModelSpec(model=args.model or tiny_teacher(tmp)), Generation(), device="cpu")
    task = build_task(ArithmeticWorld(human_pool=200, test_size=100))
    prompts = [r["prompt"] for r in task.prompts(args.prompts)]
    requests = requests_for([{"id": str(i), "prompt": p} for i, p in enumerate(prompts)], 1, 0)
    sampling = Sampling(args.max_new_tokens)
    naive(backend, prompts[:2], 4)  # warm-up
    reference, base_s = timed(lambda: naive(backend, prompts, args.max_new_tokens))
    tokens = sum(n for _, n, _ in reference)
    rows = [("naive per-prompt generate", 1, base_s, tokens / base_s, 1.0)]
    for batch in args.batch_sizes:
        backend.batch_size = batch
        done, wall = timed(lambda: backend.generate(requests, sampling))
        assert ([(c.text, c.n_tokens, c.finish_reason) for c in done]
                == reference), f"batch {batch}: outputs differ"
        rows.append(("hf backend (length-bucketed)", batch, wall, tokens / wall, base_s / wall))
    stopped = sum(f == "stop" for _, _, f in reference)
    print(f"{len(prompts)} prompts, max_new_tokens={args.max_new_tokens}, {tokens} generated tokens "
          f"({stopped} rows stopped at EOS), torch threads={torch.get_num_threads()}, identical "
          "greedy outputs")
    print(f"| {'method':<28} | {'batch':>5} | {'wall s':>7} | {'tokens/s':>9} | {'speedup':>7} |")
    print(f"|{'-' * 30}|{'-' * 7}|{'-' * 9}|{'-' * 11}|{'-' * 9}|")
    for name, batch, wall, rate, speedup in rows:
        print(f"| {name:<28} | {batch:>5} | {wall:>7.2f} | {rate:>9.0f} | {speedup:>6.1f}x |")


if __name__ == "__main__":
    main()
