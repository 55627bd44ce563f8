"""The ``openai`` backend: any OpenAI-compatible completions server (vLLM, TGI, distill serve, ...).

One HTTP request per (prompt, sample), carrying that row's seed, so a server that honours ``seed``
samples each row independently of the others. Requests run concurrently on an ``httpx.AsyncClient``
with at most ``concurrency`` in flight; transport errors, timeouts, 408/409/429 and 5xx answers are
retried with exponential backoff and jitter (``Retry-After`` is honoured), other answers fail at once
in one line. With ``logprobs_topk > 0`` it asks for ``logprobs=k`` and vLLM's
``return_tokens_as_token_ids`` so top-k entries come back as token ids (needed for KD).
When ``generation.openai.base_url`` is unset, the teacher is served locally with ``distill serve``
on a free loopback port for the backend's lifetime.
"""
from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence

import httpx

from distill.generation.backends.base import Completion, Request, Sampling
from distill.generation.errors import GenerationError
from distill.recipe.schema import Generation, ModelSpec

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 30.0


class OpenAIBackend:
    name = "openai"

    def __init__(self, teacher: ModelSpec, gen: Generation, base_url: str | None = None,
                 backoff_s: float = 0.5):
        cfg = gen.openai
        self.server = None
        base_url = base_url or cfg.base_url
        if base_url is None:
            from distill.generation.backends.serve import start_server

            self.server = start_server(teacher, port=0, batch_size=gen.batch_size)
            base_url = self.server.url
        self.base_url = base_url.rstrip("/")
        self.model = cfg.model or teacher.model
        self.concurrency, self.timeout_s, self.max_retries = cfg.concurrency, cfg.timeout_s, cfg.max_retries
        self.backoff_s = backoff_s
        key = os.environ.get(cfg.api_key_env)
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def describe(self) -> dict:
        return {"backend": self.name, "base_url": self.base_url, "model": self.model,
                "local_server": self.server is not None}

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Completion]:
        return asyncio.run(self._generate(list(requests), sampling))

    async def _generate(self, requests: list[Request], sampling: Sampling) -> list[Completion]:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base_url, headers=self.headers, limits=limits,
                                     timeout=httpx.Timeout(self.timeout_s)) as client:
            gate = asyncio.Semaphore(self.concurrency)
            return list(await asyncio.gather(*(self._one(client, gate, r, sampling) for r in requests)))

    async def _one(self, client: httpx.AsyncClient, gate: asyncio.Semaphore, request: Request,
                   sampling: Sampling) -> Completion:
        payload = {"model": self.model, "prompt": request.prompt, "max_tokens": sampling.max_new_tokens,
                   "temperature": sampling.temperature, "top_p": sampling.top_p, "n": 1, "seed": request.seed}
        if sampling.logprobs_topk:
            payload.update(logprobs=sampling.logprobs_topk, return_tokens_as_token_ids=True)
        body = await self.post(client, gate, payload)
        return parse_choice(body, request, sampling, self.base_url)

    async def post(self, client: httpx.AsyncClient, gate: asyncio.Semaphore, payload: dict) -> dict:
        """POST /completions with retries; the JSON answer, or GenerationError after the last try."""
        url = f"{self.base_url}/completions"
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                async with gate:
                    response = await client.post("/completions", json=payload)
            except httpx.TransportError as exc:  # connect/read errors and timeouts
                problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                if response.status_code == 200:
                    return response.json()
                problem = f"HTTP {response.status_code}: {_message(response)}"
                if response.status_code not in RETRY_STATUS:
                    raise GenerationError(f"{url}: {problem}")
                retry_after = _seconds(response.headers.get("Retry-After"))
            if attempt == self.max_retries:
                raise GenerationError(f"{url}: gave up after {attempt + 1} attempts; last: {problem}")
            delay = min(MAX_BACKOFF_S, self.backoff_s * 2 ** attempt) * random.uniform(0.5, 1.0)
            await asyncio.sleep(max(delay, retry_after or 0.0))
        raise AssertionError("unreachable")


def parse_choice(body: dict, request: Request, sampling: Sampling, url: str) -> Completion:
    try:
        choice = body["choices"][0]
        text, finish = choice["text"], choice.get("finish_reason") or "length"
    except (KeyError, IndexError, TypeError):
        raise GenerationError(f"{url}: answer has no choices[0].text: {str(body)[:200]}") from None
    usage = body.get("usage") or {}
    completion = Completion(request.id, request.sample, text, usage.get("completion_tokens") or 0, finish,
                            usage.get("prompt_tokens"))
    if sampling.logprobs_topk:
        _add_logprobs(completion, choice.get("logprobs"), sampling.logprobs_topk, url)
    return completion


def _add_logprobs(completion: Completion, logprobs: dict | None, k: int, url: str) -> None:
    if not logprobs or not logprobs.get("top_logprobs"):
        raise GenerationError(f"{url}: logprobs were asked for but the answer has none")
    try:
        completion.token_ids = [_token_id(t) for t in logprobs["tokens"]]
        completion.token_logprobs = [float(v) for v in logprobs["token_logprobs"]]
        tops = [sorted(((_token_id(t), float(v)) for t, v in step.items()), key=lambda p: -p[1])[:k]
                for step in logprobs["top_logprobs"]]
    except ValueError as exc:
        raise GenerationError(f"{url}: {exc}; KD needs a server that returns token ids "
                              "(return_tokens_as_token_ids, e.g. vLLM or distill serve)") from None
    completion.topk_ids = [[i for i, _ in step] for step in tops]
    completion.topk_logprobs = [[v for _, v in step] for step in tops]
    completion.n_tokens = completion.n_tokens or len(completion.token_ids)


def _token_id(token: str) -> int:
    if not token.startswith("token_id:"):
        raise ValueError(f"token {token!r} is not of the form 'token_id:<int>'")
    return int(token.removeprefix("token_id:"))


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):  # not JSON, or not OpenAI's error shape
        return response.text[:200].replace("\n", " ")


def _seconds(value: str | None) -> float | None:
    try:
        return min(MAX_BACKOFF_S, float(value)) if value else None
    except ValueError:
        return None
