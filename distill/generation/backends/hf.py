"""The ``hf`` backend: transformers ``generate``, batched, on CPU or GPU.

- Batches are length-bucketed (prompts sorted by token count, then cut into ``batch_size`` rows) and
  left-padded, so little compute goes to padding; the KV cache is on.
- Devices: one process drives one device. Several GPUs = data-parallel shards: run one shard per
  GPU (the pipeline puts shard ``i`` on ``cuda:i % device_count`` unless told otherwise, and a Slurm
  array task maps to a shard). A teacher larger than one GPU loads with ``device="auto"``, i.e.
  ``device_map="auto"`` (accelerate splits the layers over the visible GPUs, then CPU).
- Sampling is per-row seeded and independent of the batch: a ``SeededSampler`` logits processor
  draws Gumbel noise from one ``torch.Generator`` per row (seeded from the prompt id and sample index)
  and adds it to the tempered, nucleus-masked log-probs; greedy decoding then takes the argmax, which
  by the Gumbel-max trick is an exact sample from that distribution. A row consumes the same noise at
  step t whatever shares its batch, so outputs depend neither on batch composition nor on the shard
  count. The noise comes from the device's generator: a seed gives the same samples on every CPU run,
  but CPU and CUDA runs differ. Greedy needs no noise.
- Teacher top-k log-probs (``logprobs_topk > 0``) come from a ``TopKRecorder`` that sees the raw
  logits (log-softmax at temperature 1, before any sampling transform) at every step. They are stored
  per token of ``tokenizer(completion, add_special_tokens=False)`` plus the EOS when generation stopped
  on it, which is how a trainer tokenizes a completion; rows whose sampled tokens differ from that
  tokenization are re-scored by one teacher-forced forward pass (``_align_for_kd``).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from distill.generation.backends.base import Completion, Request, Sampling
from distill.generation.errors import GenerationError
from distill.recipe.schema import Generation, ModelSpec
from distill.runtime import device_for


class SeededSampler(LogitsProcessor):
    """Sample each row from softmax(logits / T) restricted to its top-p nucleus, with its own seed."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, device: torch.device):
        self.temperature, self.top_p = temperature, top_p
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logp = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            logp = nucleus(logp, self.top_p)
        vocab = scores.shape[-1]
        uniform = torch.stack([torch.rand(vocab, generator=g, device=scores.device) for g in self.generators])
        return logp - torch.log(-torch.log(uniform))  # + Gumbel(0, 1); argmax is then a sample


def nucleus(logp: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask tokens outside the smallest set whose probability reaches ``top_p`` (the top token stays)."""
    sorted_logp, order = logp.sort(dim=-1, descending=True)
    probs = sorted_logp.exp()
    outside = (probs.cumsum(dim=-1) - probs) >= top_p
    mask = torch.zeros_like(outside).scatter(-1, order, outside)
    return logp.masked_fill(mask, float("-inf"))


class TopKRecorder(LogitsProcessor):
    """Records, per step, the raw top-k log-probs and the log-prob of the token then chosen."""

    def __init__(self, k: int):
        self.k = k
        self.ids: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.chosen: list[torch.Tensor] = []
        self._last: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logp = torch.log_softmax(scores.float(), dim=-1)
        if self._last is not None:  # the previous step's choice is now the last input token
            self.chosen.append(self._last.gather(1, input_ids[:, -1:]).squeeze(1))
        top = logp.topk(min(self.k, logp.shape[-1]), dim=-1)
        self.ids.append(top.indices)
        self.values.append(top.values)
        self._last = logp
        return scores

    def finish(self, sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ids [B, T, k], log-probs [B, T, k], chosen log-probs [B, T]) on CPU."""
        self.chosen.append(self._last.gather(1, sequences[:, -1:]).squeeze(1))
        return (torch.stack(self.ids, 1).cpu(), torch.stack(self.values, 1).cpu(),
                torch.stack(self.chosen, 1).cpu())


def load_teacher(spec: ModelSpec, device: str):
    """(model, tokenizer) for a local path or hub id; ``device="auto"`` shards it with device_map."""
    from distill.models import load_model, load_tokenizer

    if not spec.model:
        raise GenerationError("teacher.model is not set: give a local model folder or a hub id")
    name = spec.model
    if name.startswith((".", "/", "~")) and not Path(name).expanduser().exists():
        raise GenerationError(f"teacher model path {name!r} does not exist")
    try:
        tokenizer = load_tokenizer(spec)
        if device != "auto":
            return load_model(spec, device), tokenizer
        return load_model(spec, device_map="auto"), tokenizer  # sharded over the visible GPUs
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenerationError(f"teacher {name!r}: cannot load ({first})") from None


class HFBackend:
    name = "hf"

    def __init__(self, teacher: ModelSpec, gen: Generation, device: str | None = None,
                 model=None, tokenizer=None):
        """Load ``teacher`` on ``device`` (None: ``runtime.device_for()``; "auto": device_map="auto"),
        or use an already loaded ``model``/``tokenizer`` pair (the server and benchmarks do)."""
        self.teacher, self.batch_size = teacher, gen.batch_size
        device = device or (str(model.device) if model is not None else device_for())
        if model is None:
            model, tokenizer = load_teacher(teacher, device)
        self.model, self.tokenizer = model, tokenizer
        self.device = model.device if device == "auto" else torch.device(device)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eos = model.generation_config.eos_token_id
        eos = tokenizer.eos_token_id if eos is None else eos
        self.eos_ids = sorted({eos} if isinstance(eos, int) else set(eos))
        self.dtype = str(model.dtype).removeprefix("torch.")

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.teacher.model, "revision": self.teacher.revision,
                "dtype": self.dtype, "device": str(self.device)}

    def close(self) -> None:
        self.model = None

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Completion]:
        ids = self.tokenizer([r.prompt for r in requests], add_special_tokens=True)["input_ids"]
        order = sorted(range(len(requests)), key=lambda i: (len(ids[i]), i))  # length buckets
        out: list[Completion | None] = [None] * len(requests)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            done = self._batch([requests[i] for i in rows], [ids[i] for i in rows], sampling)
            for i, completion in zip(rows, done):
                out[i] = completion
        return out  # type: ignore[return-value]

    def _batch(self, requests: list[Request], ids: list[list[int]], sampling: Sampling) -> list[Completion]:
        width = max(map(len, ids))
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, seq in enumerate(ids):  # left padding: every row's last prompt token is aligned
            input_ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq):] = 1
        processors = LogitsProcessorList()
        recorder = TopKRecorder(sampling.logprobs_topk) if sampling.logprobs_topk else None
        if recorder:
            processors.append(recorder)  # first: it must see the raw logits
        if not sampling.greedy:
            processors.append(SeededSampler([r.seed for r in requests], sampling.temperature,
                                            sampling.top_p, self.device))
        config = GenerationConfig(max_new_tokens=sampling.max_new_tokens, do_sample=False, num_beams=1,
                                  eos_token_id=self.eos_ids, pad_token_id=self.pad_id, use_cache=True)
        with torch.inference_mode():
            sequences = self.model.generate(input_ids=input_ids.to(self.device),
                                            attention_mask=mask.to(self.device),
                                            generation_config=config, logits_processor=processors)
        new = sequences[:, width:].cpu()
        top = recorder.finish(sequences) if recorder else None
        done = [self._completion(req, new[row], len(ids[row]), top, row) for row, req in enumerate(requests)]
        if recorder:
            self._align_for_kd(done, ids, sampling.logprobs_topk)
        return done

    def _align_for_kd(self, done: list[Completion], prompt_ids: list[list[int]], k: int) -> None:
        """Make KD entries follow ``tokenizer(text, add_special_tokens=False)`` (+ EOS), as a trainer
        tokenizes the completion: where the sampled tokens are not that canonical tokenization (or do
        not survive decoding), the teacher re-scores the canonical tokens with one forward pass."""
        canonical = self.tokenizer([c.text for c in done], add_special_tokens=False)["input_ids"]
        targets = [ids + ([c.token_ids[-1]] if c.finish_reason == "stop" else [])
                   for c, ids in zip(done, canonical)]
        redo = [i for i, (c, t) in enumerate(zip(done, targets)) if t != c.token_ids and t]
        for start in range(0, len(redo), self.batch_size):
            rows = redo[start:start + self.batch_size]
            scored = self._score([prompt_ids[i] for i in rows], [targets[i] for i in rows], k)
            for i, (top_ids, top_values, chosen) in zip(rows, scored):
                done[i].token_ids, done[i].token_logprobs = targets[i], chosen
                done[i].topk_ids, done[i].topk_logprobs = top_ids, top_values
        for c, t in zip(done, targets):
            if not t:  # empty text and no EOS: nothing to distil
                c.token_ids, c.token_logprobs, c.topk_ids, c.topk_logprobs = [], [], [], []

    def _score(self, prompts: list[list[int]], targets: list[list[int]], k: int) -> list[tuple]:
        """Teacher-forced top-k log-probs of ``targets`` after ``prompts`` (right padding: positions
        exact)."""
        seqs = [p + t for p, t in zip(prompts, targets)]
        width = max(map(len, seqs))
        input_ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            input_ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, :len(seq)] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids.to(self.device),
                                attention_mask=mask.to(self.device)).logits
        out = []
        for row, (p, t) in enumerate(zip(prompts, targets)):
            logp = torch.log_softmax(logits[row, len(p) - 1:len(p) + len(t) - 1].float(), dim=-1).cpu()
            top = logp.topk(min(k, logp.shape[-1]), dim=-1)
            chosen = logp.gather(1, torch.tensor(t)[:, None]).squeeze(1)
            out.append((top.indices.tolist(), top.values.tolist(), chosen.tolist()))
        return out

    def _completion(self, req: Request, new: torch.Tensor, prompt_tokens: int, top, row: int) -> Completion:
        tokens = new.tolist()
        stop = next((i for i, t in enumerate(tokens) if t in self.eos_ids), None)
        n = len(tokens) if stop is None else stop + 1
        text = self.tokenizer.decode(tokens[: n if stop is None else stop], skip_special_tokens=True)
        completion = Completion(req.id, req.sample, text, n, "length" if stop is None else "stop",
                                prompt_tokens)
        if top is not None:
            top_ids, top_values, chosen = top
            completion.token_ids = tokens[:n]
            completion.token_logprobs = chosen[row, :n].tolist()
            completion.topk_ids = top_ids[row, :n].tolist()
            completion.topk_logprobs = top_values[row, :n].tolist()
        return completion
