"""The expert step against a real Label Studio server (its own environment, SQLite, loopback).

A tiny recipe's ``edited`` arm runs to its waiting expert step; a project is created through the
API with distill's label config, the exported tasks are imported, an annotator submits corrections
with their lead times, the finished tasks are exported as JSON the way a user does, and the rerun
imports them and finishes. The unit tests' tasks make the same trip for every primitive, and the
server's exports must match the fixtures the format tests read (tests/fixtures/labelstudio/).

Needs .venv-labelstudio (``bash .ci/labelstudio-env.sh``); skipped without it unless
DISTILL_LABELSTUDIO_VENV names it (as .ci/run does), then its absence is a failure.
Run: pytest tests/integration/test_labelstudio_server.py -q     (about 1-2 min on 2 cores)
Rewrite the fixtures from the server: DISTILL_WRITE_FIXTURES=1 pytest ... -k fixtures
"""
from __future__ import annotations

import http.cookiejar
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from distill.human import labelstudio
from distill.human.expert import arithmetic_reference
from distill.human.stage import WAITING_FILE
from distill.pipeline.run import run_recipe
from tests.pipeline_helpers import ROOT, tiny_recipe
from tests.unit.test_annotation_roundtrip import LS_ANSWERS, _tasks

pytestmark = pytest.mark.integration
VENV = Path(os.environ.get("DISTILL_LABELSTUDIO_VENV") or ROOT / ".venv-labelstudio")
DRIVER = Path(__file__).with_name("labelstudio_driver.py")
FIXTURES = ROOT / "tests/fixtures/labelstudio"
USER, PASSWORD = "annotator@distill.local", "distill-test-pw"


@dataclass(frozen=True)
class Server:
    url: str
    token: str  # a personal access token (JWT refresh token)

    def annotate(self, folder: Path, answers: dict, out: Path) -> Path:
        """Create a project from ``folder`` (tasks.json + label_config.xml), annotate, export to ``out``."""
        answers_file = out.with_suffix(".answers.json")
        answers_file.write_text(json.dumps(answers))
        cmd = [str(VENV / "bin/python"), str(DRIVER), self.url, self.token, str(folder), str(answers_file),
               str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, f"driver failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        return out


def readme_start_args(port: int) -> list[str]:
    """The README's ``label-studio start`` command as written, on a free port with this test's user."""
    line = next(ln for ln in (ROOT / "README.md").read_text().splitlines() if "bin/label-studio start" in ln)
    args = shlex.split(line.split("bin/label-studio", 1)[1])
    assert (args[0] == "start"
            and {"--no-browser", "--internal-host", "--port", "--username", "--password"} <= set(args))
    mine = {"--port": str(port), "--username": USER, "--password": PASSWORD}
    return [mine.get(args[i - 1], a) if i else a for i, a in enumerate(args)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, limit_s: float = 400) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"label-studio exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"label-studio answered no /health within {limit_s:.0f} s:\n{log.read_text()[-3000:]}")


def _personal_access_token(url: str) -> str:
    """Log in as the user does (session + CSRF), then create a personal access token (POST /api/token/)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(url + "/user/login/", timeout=30).read()
    csrf = lambda: next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode({"email": USER, "password": PASSWORD,
                                   "csrfmiddlewaretoken": csrf()}).encode()
    opener.open(urllib.request.Request(url + "/user/login/", data=form,
                                       headers={"Referer": url + "/user/login/"}),
                timeout=30).read()
    request = urllib.request.Request(url + "/api/token/", data=b"{}", method="POST", headers={
        "X-CSRFToken": csrf(), "Content-Type": "application/json", "Referer": url + "/"})
    with opener.open(request, timeout=30) as r:
        return json.loads(r.read())["token"]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    if not (VENV / "bin/label-studio").exists():
        why = f"no Label Studio environment at {VENV} (build it: bash .ci/labelstudio-env.sh)"
        if os.environ.get("DISTILL_LABELSTUDIO_VENV"):
            pytest.fail(f"DISTILL_LABELSTUDIO_VENV is set but {why}")
        pytest.skip(why)
    data = tmp_path_factory.mktemp("labelstudio") / "data"
    if (VENV / "migrated-data").is_dir():  # migrations already applied: starts in seconds, not minutes
        shutil.copytree(VENV / "migrated-data", data)
    port, log = _free_port(), data.parent / "server.log"
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "LATEST_VERSION_CHECK": "false"}
    cmd = [str(VENV / "bin/label-studio"), *readme_start_args(port)]
    start = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        print(f"label-studio up in {time.monotonic() - start:.1f} s at {url}")
        yield Server(url, _personal_access_token(url))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _edits(tasks_file: Path) -> dict:
    """The annotator's work: each draft corrected to the solver's solution, in its own time."""
    out = {}
    for i, task in enumerate(json.loads(tasks_file.read_text())):
        data = task["data"]
        region = {"id": f"e{i}", "from_name": "solution", "to_name": "prompt", "type": "textarea",
                  "origin": "manual", "value": {"text": [arithmetic_reference(data["prompt"])]}}
        out[data["distill_id"]] = {"result": [region], "lead_time": 20.0 + 7.5 * i}
    return out


def test_the_expert_step_waits_then_resumes_from_a_real_export(server, tmp_path, cache):
    recipe = tiny_recipe(tmp_path, "mixes.arms=[{name: edited, fraction: 0.0, human: edited}]",
                         "experts={kind: label_studio, drafts: 4}", "mixes.sizes=[4]", "mixes.seeds=[0]",
                         "generation.num_prompts=40", "generation.shards=1", "world.test_size=20",
                         "teacher.build.max_steps=20", "teacher.build.eval_every=10", "train.tokens=4096")
    run_dir = tmp_path / recipe.name
    assert run_recipe(recipe) == 1  # the expert step waits; everything downstream of it is skipped
    folder = next(p.parent for p in [*run_dir.glob(f"steps/expert-*/{WAITING_FILE}"),
                                     *cache.glob(f"steps/expert-*/{WAITING_FILE}")])
    answers = _edits(folder / "export" / "tasks.json")
    assert len(answers) == 4
    server.annotate(folder / "export", answers, folder / "import" / "export.json")

    assert run_recipe(recipe) == 0
    assert (folder / "DONE").exists() and not (folder / WAITING_FILE).exists()
    work = json.loads((folder / "work.json").read_text())
    leads = sorted(a["lead_time"] for a in answers.values())
    assert work["rows"] == 4 and work["human_s"] == pytest.approx(sum(leads)) and work["simulated"] is False
    from distill.sources import load_source

    rows = [dict(r, meta=json.loads(r["meta"])) for r in load_source(folder / "source")]
    assert sorted(r["meta"]["human_s"] for r in rows) == leads
    for row in rows:
        assert row["completion"] == answers[row["id"]]["result"][0]["value"]["text"][0]
        assert row["meta"]["expert"].startswith("label-studio:") and row["meta"]["simulated"] is False
    assert list(run_dir.glob("steps/report-*/report.md")), "the run did not finish with a report"


def _shape(export: list[dict]) -> list:
    """What the format tests rely on: each task's keys, data and annotations' keys, results and times."""
    return [(sorted(t), t["data"], [(sorted(a), a["result"], a["lead_time"], a["was_cancelled"])
                                    for a in t["annotations"]]) for t in export]


@pytest.mark.parametrize("primitive", ["edited", "first_error", "picked"])
def test_the_format_tests_fixtures_are_what_the_server_exports(server, tmp_path, primitive):
    tasks = _tasks(primitive)
    folder = tmp_path / "export"
    labelstudio.export_tasks(tasks, folder)
    exported = server.annotate(folder, LS_ANSWERS[primitive], tmp_path / f"{primitive}.json")
    labelstudio.import_annotations(exported, tasks)  # the importer reads the server's own export
    fixture = FIXTURES / f"{primitive}.json"
    if os.environ.get("DISTILL_WRITE_FIXTURES") == "1":
        fixture.parent.mkdir(parents=True, exist_ok=True)
        fixture.write_text(json.dumps(json.loads(exported.read_text()), indent=1) + "\n")
    assert _shape(json.loads(exported.read_text())) == _shape(json.loads(fixture.read_text()))
