"""The ``vllm`` backend: ``vllm.LLM(...).generate`` with tensor parallelism (CUDA machines).

vLLM is imported when the backend is built, never at package import, and is not a default
dependency (``pip install 'distill[vllm]'`` on a CUDA machine). Each request gets its own
``SamplingParams`` carrying the row's seed, so a row's sample does not depend on its batch; the
engine batches internally (continuous batching). ``logprobs_topk`` maps to ``SamplingParams.logprobs``
(vLLM returns the raw model log-probs of the top-k tokens plus the sampled one).
"""
from __future__ import annotations

from collections.abc import Sequence

from distill.generation.backends.base import Completion, Request, Sampling
from distill.generation.errors import GenerationError
from distill.recipe.schema import Generation, ModelSpec


def _import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise GenerationError(
            f"generation.backend 'vllm' needs the vllm package ({exc}); install it on a CUDA machine with "
            "pip install 'distill[vllm]', or use backend 'hf' or 'openai'") from None
    return vllm


class VLLMBackend:
    name = "vllm"

    def __init__(self, teacher: ModelSpec, gen: Generation):
        vllm = _import_vllm()
        if not teacher.model:
            raise GenerationError("teacher.model is not set: give a local model folder or a hub id")
        self.teacher, self.SamplingParams = teacher, vllm.SamplingParams
        self.llm = vllm.LLM(
            model=teacher.model, revision=teacher.revision, tokenizer_revision=teacher.revision,
            trust_remote_code=teacher.trust_remote_code, dtype=teacher.dtype, seed=gen.seed,
            tensor_parallel_size=gen.vllm.tensor_parallel_size,
            gpu_memory_utilization=gen.vllm.gpu_memory_utilization,
            max_logprobs=max(20, gen.logprobs_topk))
        self.tokenizer = self.llm.get_tokenizer()
        self.version = getattr(vllm, "__version__", None)

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.teacher.model, "revision": self.teacher.revision,
                "dtype": self.teacher.dtype, "vllm": self.version}

    def close(self) -> None:
        self.llm = None

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Completion]:
        params = [self.SamplingParams(n=1, temperature=sampling.temperature, top_p=sampling.top_p,
                                      max_tokens=sampling.max_new_tokens, seed=r.seed,
                                      logprobs=sampling.logprobs_topk or None) for r in requests]
        outputs = self.llm.generate([r.prompt for r in requests], params, use_tqdm=False)
        return [to_completion(r, out, sampling.logprobs_topk, self.tokenizer)
                for r, out in zip(requests, outputs)]


def to_completion(request: Request, output, k: int, tokenizer=None) -> Completion:
    """A vLLM ``RequestOutput`` as a ``Completion`` (token ids include a final EOS, as vLLM reports).

    With ``tokenizer`` the text is the decoding of the generated tokens (EOS excluded), as the hf
    backend writes it: vLLM's incremental detokenizer holds back an unfinished UTF-8 sequence at the
    end, so its own text is not always the decoding of its tokens."""
    first = output.outputs[0]
    token_ids = list(first.token_ids)
    finish = "stop" if first.finish_reason == "stop" else "length"
    text = first.text
    if tokenizer is not None:
        text = tokenizer.decode(token_ids[:-1] if finish == "stop" else token_ids, skip_special_tokens=True)
    completion = Completion(request.id, request.sample, text, len(token_ids), finish,
                            len(output.prompt_token_ids or []))
    if k and first.logprobs is not None:
        completion.token_ids = token_ids
        completion.token_logprobs = [step[t].logprob for step, t in zip(first.logprobs, token_ids)]
        tops = [sorted(step.items(), key=lambda item: item[1].rank)[:k] for step in first.logprobs]
        completion.topk_ids = [[int(t) for t, _ in step] for step in tops]
        completion.topk_logprobs = [[float(lp.logprob) for _, lp in step] for step in tops]
    return completion
