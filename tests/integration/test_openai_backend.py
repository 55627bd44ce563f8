"""The openai backend against a real HTTP server on loopback: `distill serve` (in a thread and in a
subprocess), plus a deliberately flaky real server for retries and timeouts.

Run: pytest tests/integration/test_openai_backend.py -q      (about 30 s on 2 cores)
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import torch
from datasets import load_from_disk

from distill.generation import GenerationError, run_generation
from distill.generation.backends import Sampling, make_backend, requests_for
from distill.generation.backends.serve import start_server
from distill.recipe.schema import Filters, Generation, ModelSpec, OpenAIBackend
from distill.world import build_task

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model on a shared 2-core machine: see tests/smoke/test_generate.py
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def server(teacher_dir):
    with start_server(str(teacher_dir), port=0, batch_size=16) as srv:
        yield srv


def openai_gen(url: str, **kw) -> Generation:
    return Generation(batch_size=16, openai=OpenAIBackend(base_url=url, concurrency=6, **kw))


def test_hf_and_openai_give_identical_outputs(teacher_dir, server):
    spec = ModelSpec(model=str(teacher_dir))
    hf = make_backend("hf", spec, Generation(batch_size=7))
    remote = make_backend("openai", spec, openai_gen(server.url))
    rows = [{"id": f"p{i}", "prompt": f"Q:{100 + 37 * i}+{10 + i * i}="} for i in range(24)]
    for sampling, samples in ((Sampling(12), 1),
                              (Sampling(12, temperature=1.0, top_p=0.9, logprobs_topk=3), 2)):
        requests = requests_for(rows, samples, seed=5)
        local, served = hf.generate(requests, sampling), remote.generate(requests, sampling)
        assert [(c.text, c.n_tokens, c.finish_reason) for c in local] == \
               [(c.text, c.n_tokens, c.finish_reason) for c in served]
        assert len({c.text for c in local}) > len(rows) // 2  # not one repeated output
        if sampling.logprobs_topk:
            assert [c.topk_ids for c in local] == [c.topk_ids for c in served]
            flat = lambda cs: torch.tensor([v for c in cs for step in c.topk_logprobs for v in step])
            torch.testing.assert_close(flat(served), flat(local), atol=1e-5, rtol=0)


def test_pipeline_on_openai_with_a_local_server_equals_hf(teacher_dir, world, tmp_path):
    task, spec = build_task(world), ModelSpec(model=str(teacher_dir))
    base = {"max_new_tokens": 8, "batch_size": 8, "chunk_size": 5, "temperature": 0.7, "logprobs_topk": 2,
            "filters": Filters(verify=False)}
    for backend in ("hf", "openai"):  # openai with no base_url serves the teacher on a free port
        run_generation(task.prompts(20), spec, Generation(backend=backend, **base), tmp_path / backend,
                       progress=False)
    local, served = (load_from_disk(str(tmp_path / b / "synthetic" / "data")) for b in ("hf", "openai"))
    # the same rows; the served logprobs may differ in the last stored digit: the server batches
    # whatever requests arrive together, and a row's float sums depend on its batch's shape
    topk = "teacher_topk_logprobs"
    assert local.remove_columns(topk).to_list() == served.remove_columns(topk).to_list()
    flat = lambda ds: torch.tensor([v for row in ds[topk] for step in row for v in step])
    torch.testing.assert_close(flat(served), flat(local), atol=5e-5, rtol=0)
    meta = json.loads((tmp_path / "openai" / "synthetic" / "meta.json").read_text())
    assert meta["teacher"]["ran_on"][0]["local_server"] is True


def test_errors_that_cannot_be_retried_fail_at_once_in_one_line(teacher_dir, server):
    spec = ModelSpec(model=str(teacher_dir))
    gen = Generation(openai=OpenAIBackend(base_url=server.url, model="nope", max_retries=5))
    started = time.perf_counter()
    with pytest.raises(GenerationError, match=r"/completions: HTTP 404: model 'nope' not found") as info:
        make_backend("openai", spec, gen).generate(requests_for([{"id": "a", "prompt": "Q:1+1="}], 1, 0),
                                                   Sampling(4))
    assert "\n" not in str(info.value) and time.perf_counter() - started < 5


class _Flaky(BaseHTTPRequestHandler):
    """Fails the first `failures` POSTs with 503 (or stalls them past the client timeout), then proxies
    to the real server."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        state = self.server.state
        with state["lock"]:
            state["posts"] += 1
            fail = state["posts"] <= state["failures"]
        if fail and state["mode"] == "stall":
            time.sleep(1.0)
        if fail:
            self._reply(503, b'{"error": {"message": "busy"}}', {"Retry-After": "0"})
            return
        answer = httpx.post(state["upstream"] + "/completions", content=body,
                            headers={"Content-Type": "application/json"}, timeout=30)
        self._reply(answer.status_code, answer.content, {})

    def _reply(self, status: int, data: bytes, headers: dict) -> None:
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                           **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass


@pytest.fixture
def flaky(server):
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    proxy.daemon_threads = True
    proxy.state = {"lock": threading.Lock(), "posts": 0, "failures": 0, "mode": "503", "upstream": server.url}
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_retries_with_backoff_then_succeeds_or_gives_up(teacher_dir, server, flaky):
    spec = ModelSpec(model=str(teacher_dir))
    url = f"http://127.0.0.1:{flaky.server_address[1]}/v1"
    requests = requests_for([{"id": "a", "prompt": "Q:12+34="}], 1, 0)
    direct = make_backend("openai", spec, openai_gen(server.url)).generate(requests, Sampling(6))
    flaky.state.update(failures=2)
    retried = make_backend("openai", spec, openai_gen(url, max_retries=3), backoff_s=0.01).generate(requests,
                                                                                                    Sampling(6))
    assert retried[0].text == direct[0].text and flaky.state["posts"] == 3
    flaky.state.update(posts=0, failures=10, mode="stall")
    backend = make_backend("openai", spec, openai_gen(url, max_retries=1, timeout_s=0.3), backoff_s=0.01)
    with pytest.raises(GenerationError, match=r"gave up after 2 attempts; last: ReadTimeout"):
        backend.generate(requests, Sampling(6))


def test_distill_serve_cli_in_a_subprocess(teacher_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "distill.generation.backends.serve", str(teacher_dir),
                             "--port", "0", "--name", "teacher", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("distill serve: teacher on http://127.0.0.1:"), proc.stderr.read()[-2000:]
        url = line.split(" on ")[1].strip()
        assert httpx.get(f"{url}/models").json()["data"][0]["id"] == "teacher"
        answer = httpx.post(f"{url}/completions", json={"model": "teacher", "prompt": ["Q:1+2=", "Q:3+4="],
                                                         "max_tokens": 5, "temperature": 0, "logprobs": 2,
                                                         "return_tokens_as_token_ids": True}).json()
        assert [c["index"] for c in answer["choices"]] == [0, 1]
        assert all(len(c["logprobs"]["top_logprobs"][0]) == 2 for c in answer["choices"])
        assert answer["choices"][0]["logprobs"]["tokens"][0].startswith("token_id:")
        from distill.models import load_tokenizer

        tok = load_tokenizer(str(teacher_dir))
        for choice in answer["choices"]:  # the reported tokens are the text's own tokenization
            ids = [int(t.removeprefix("token_id:")) for t in choice["logprobs"]["tokens"]]
            assert (tok(choice["text"], add_special_tokens=False)["input_ids"]
                    == ids[:len(ids) - (choice["finish_reason"] == "stop")])
        bad = httpx.post(f"{url}/completions", json={"prompt": "x", "stream": True})
        assert bad.status_code == 400 and "stream" in bad.json()["error"]["message"]
        assert httpx.post(f"{url}/completions", json={"prompt": "x", "model": "other"}).status_code == 404
        assert httpx.post(f"{url}/completions", json={"prompt": "x", "temperature": -1}).status_code == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_distill_serve_missing_model_is_one_line(tmp_path):
    from distill.generation.backends.serve import main

    assert main([str(tmp_path / "missing"), "--port", "0"]) == 2
