"""``distill serve MODEL --port P``: a local teacher behind the OpenAI completions API.

Endpoints: ``GET /v1/models``, ``POST /v1/completions`` (``prompt`` a string or a list, ``max_tokens``,
``temperature`` (0: greedy), ``top_p``, ``n``, ``seed``, ``logprobs`` (top-k per token), and vLLM's
``return_tokens_as_token_ids`` extension so that KD clients get token ids), ``GET /health``.
Streaming, ``echo``, ``stop``, ``suffix`` and ``best_of`` are refused with a 400, not ignored.

With ``logprobs``, the reported tokens are the completion text's own tokenization (plus a final
EOS), which is what a trainer sees; where the sampled tokens differ from it, the teacher re-scores
the text (see ``distill.generation.backends.hf``). ``usage.completion_tokens`` counts sampled tokens.

Requests from concurrent clients are collected by one worker thread into batches for the ``hf``
backend (length-bucketed, KV cache), so many small requests still run as large batches. A choice's
seed is the request's ``seed`` when the request asks for a single completion (what distill's
``openai`` backend sends: one request per row), else one derived from (seed, prompt index, choice);
either way it seeds that row alone, so the text does not depend on what else is in the batch; its
logprobs can differ in the last stored digit (a row's float sums depend on its batch's shape).
"""
from __future__ import annotations

import argparse
import json
import queue
import secrets
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from distill.generation.backends.base import Completion, Request, Sampling, row_seed
from distill.generation.errors import GenerationError
from distill.recipe.schema import Generation, ModelSpec

_UNSUPPORTED = ("stream", "echo", "stop", "suffix", "logit_bias", "presence_penalty", "frequency_penalty")


class RequestError(Exception):
    def __init__(self, status: int, message: str, code: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class _Job:
    requests: list[Request]
    sampling: Sampling
    future: Future = field(default_factory=Future)


class Batcher:
    """One worker thread runs the model; concurrent jobs with equal sampling share its batches."""

    def __init__(self, backend, max_rows: int, wait_s: float = 0.01):
        self.backend, self.max_rows, self.wait_s = backend, max_rows, wait_s
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="distill-serve-batcher", daemon=True)
        self.thread.start()

    def submit(self, requests: list[Request], sampling: Sampling) -> Future:
        job = _Job(requests, sampling)
        self.jobs.put(job)
        return job.future

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=30)

    def _loop(self) -> None:
        while (job := self.jobs.get()) is not None:
            jobs, rows = [job], len(job.requests)
            deadline = time.monotonic() + self.wait_s
            while rows < self.max_rows and (left := deadline - time.monotonic()) > 0:
                try:
                    nxt = self.jobs.get(timeout=left)
                except queue.Empty:
                    break
                if nxt is None:
                    self.jobs.put(None)  # stop after this round
                    break
                jobs.append(nxt)
                rows += len(nxt.requests)
            for sampling in dict.fromkeys(j.sampling for j in jobs):
                self._run([j for j in jobs if j.sampling == sampling], sampling)

    def _run(self, jobs: list[_Job], sampling: Sampling) -> None:
        try:
            done = self.backend.generate([r for j in jobs for r in j.requests], sampling)
        except Exception as exc:  # noqa: BLE001 -- any model failure: the clients get a 500 naming it
            for job in jobs:
                job.future.set_exception(exc)
            return
        for job in jobs:
            job.future.set_result(done[: len(job.requests)])
            done = done[len(job.requests):]


def parse_request(body: object, served: str) -> tuple[list[str], int, Sampling, int | None, bool]:
    """(prompts, n, sampling, seed, token ids as strings?) from a completions request, or RequestError."""
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    if body.get("model") not in (None, served):
        raise RequestError(404, f"model {body['model']!r} not found; this server serves {served!r}",
                           "model_not_found")
    for key in _UNSUPPORTED:  # accepted only when unset, null, false, zero or empty
        if body.get(key):
            raise RequestError(400, f"{key}={body[key]!r} is not supported by distill serve")
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise RequestError(400, "prompt must be a non-empty string or a non-empty list of strings")
    n = _int(body, "n", 1, low=1)
    if body.get("best_of") not in (None, n):
        raise RequestError(400, "best_of is not supported by distill serve")
    temperature, top_p = _num(body, "temperature", 1.0, 0.0, 2.0), _num(body, "top_p", 1.0, 1e-9, 1.0)
    logprobs = body.get("logprobs")
    k = 0 if logprobs is None else _int(body, "logprobs", 0, low=0)
    sampling = Sampling(_int(body, "max_tokens", 16, low=1), temperature, top_p,
                        max(k, 1) if logprobs is not None else 0)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError(400, f"seed must be an integer, got {seed!r}")
    return prompts, n, sampling, seed, bool(body.get("return_tokens_as_token_ids"))


def _int(body: dict, key: str, default: int, low: int) -> int:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RequestError(400, f"{key} must be an integer >= {low}, got {value!r}")
    return value


def _num(body: dict, key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(400, f"{key} must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def build_requests(prompts: list[str], n: int, seed: int | None) -> list[Request]:
    base = secrets.randbits(63) if seed is None else seed
    if len(prompts) * n == 1:
        return [Request("0", 0, prompts[0], base)]
    return [Request(str(p), j, text, row_seed(base, str(p), j)) for p, text in enumerate(prompts)
            for j in range(n)]


def response_body(served: str, requests: list[Request], done: list[Completion], top: int | None,
                  as_ids: bool, tokenizer) -> dict:
    choices = []
    for index, (req, c) in enumerate(zip(requests, done)):
        choice = {"index": index, "text": c.text, "finish_reason": c.finish_reason, "logprobs": None}
        if top is not None:
            choice["logprobs"] = _logprobs(c, top, as_ids, tokenizer, len(req.prompt))
        choices.append(choice)
    prompt_tokens = sum(c.prompt_tokens or 0 for c, r in zip(done, requests) if r.sample == 0)
    completion_tokens = sum(c.n_tokens for c in done)
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": served, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def _logprobs(c: Completion, top: int, as_ids: bool, tokenizer, offset: int) -> dict:
    def name(token: int) -> str:
        return f"token_id:{token}" if as_ids else tokenizer.decode([token])

    tokens = [name(t) for t in c.token_ids]
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += 0 if as_ids else len(token)
    tops = [{name(i): v for i, v in zip(ids[:top], values[:top])}
            for ids, values in zip(c.topk_ids, c.topk_logprobs)]
    return {"tokens": tokens, "token_logprobs": c.token_logprobs, "top_logprobs": tops if top else None,
            "text_offset": offsets}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    server: CompletionServer

    def log_message(self, format, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.name, "object": "model",
                                                         "created": self.server.started,
                                                         "owned_by": "distill"}]})
        elif self.path.rstrip("/") == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, _error(f"no route GET {self.path}", "not_found"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/completions":
            self._send(404, _error(f"no route POST {self.path}", "not_found"))
            return
        try:
            body = json.loads(raw or b"null")
            prompts, n, sampling, seed, as_ids = parse_request(body, self.server.name)
            requests = build_requests(prompts, n, seed)
            done = self.server.batcher.submit(requests, sampling).result()
            top = body.get("logprobs")
            self._send(200,
                       response_body(self.server.name, requests, done, top, as_ids, self.server.tokenizer))
        except json.JSONDecodeError as exc:
            self._send(400, _error(f"invalid JSON body ({exc.msg})"))
        except RequestError as exc:
            self._send(exc.status, _error(exc.message, exc.code))
        except Exception as exc:  # noqa: BLE001 -- a model failure: tell the client, keep serving
            self._send(500, _error(f"{type(exc).__name__}: {exc}", "server_error"))

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _error(message: str, code: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": code, "code": code}}


class CompletionServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], name: str, batcher: Batcher, tokenizer,
                 verbose: bool = False):
        super().__init__(address, _Handler)
        self.name, self.batcher, self.tokenizer, self.verbose = name, batcher, tokenizer, verbose
        self.started = int(time.time())


class LocalServer:
    """A running server (in a background thread): ``url`` is the OpenAI ``base_url`` (ends in /v1)."""

    def __init__(self, server: CompletionServer):
        self.server, self.name = server, server.name
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}/v1"
        self.thread = threading.Thread(target=server.serve_forever, name="distill-serve", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.batcher.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_server(model: ModelSpec | str, host: str = "127.0.0.1", port: int = 0, *, name: str | None = None,
                 batch_size: int = 64, device: str | None = None, verbose: bool = False) -> LocalServer:
    """Load ``model`` on the hf backend and serve it; ``port=0`` picks a free port (see ``.url``)."""
    from distill.generation.backends.hf import HFBackend

    spec = ModelSpec(model=model) if isinstance(model, str) else model
    backend = HFBackend(spec, Generation(batch_size=batch_size), device=device)
    try:
        server = CompletionServer((host, port), name or spec.model, Batcher(backend, batch_size),
                                  backend.tokenizer, verbose)
    except OSError as exc:
        raise GenerationError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return LocalServer(server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distill serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="local model folder or hub id")
    parser.add_argument("--port", type=int, default=8000, help="TCP port; 0 picks a free one (printed)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind; 0.0.0.0 exposes it to the network")
    parser.add_argument("--name", default=None, help="model name clients send (default: MODEL as given)")
    parser.add_argument("--batch-size", type=int, default=64, help="rows per generate() batch")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:N, or auto (device_map=auto: a teacher larger than one GPU); "
                             "default cuda:0 when a GPU is visible, else cpu")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                        help="weights dtype (auto: as saved)")
    parser.add_argument("--revision", default=None, help="hub revision of MODEL")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code")
    parser.add_argument("--attn-implementation", default=None,
                        help="attention kernel (sdpa, eager, flash_attention_2; default: "
                             "transformers' choice)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    spec = ModelSpec(model=args.model, revision=args.revision, dtype=args.dtype,
                     trust_remote_code=args.trust_remote_code, attn_implementation=args.attn_implementation)
    try:
        server = start_server(spec, args.host, args.port, name=args.name, batch_size=args.batch_size,
                              device=args.device, verbose=args.verbose)
    except GenerationError as exc:
        print(f"distill serve: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"distill serve: {server.name} on {server.url}", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
