"""Interrupts (issue 20, class 7): Ctrl-C to a local run's process group, or SIGTERM to its main
process, prints one line naming what was interrupted and that a rerun resumes, exit 130 or 143, no
traceback, no resource_tracker warning and no worker left running; the rerun resumes with no lost and
no repeated step. A worker killed under its step (as by the out-of-memory
killer) fails that step with a one-line reason that `distill status` shows too. Real processes on the
tiny recipe up to its generation steps (a minute or two on 2 loaded cores).
Run: pytest tests/smoke/test_interrupt.py -q"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pipeline_helpers import ROOT, done_markers

pytestmark = pytest.mark.smoke
SMALL = ["mixes.sizes=[50]", "mixes.seeds=[0]", "eval.tasks=[distill_arith]", "generation.num_prompts=60",
         "teacher.build.max_steps=20", "launcher.workers=1"]


def _argv(out: Path) -> list[str]:
    return [sys.executable, "-m", "distill.cli", "generate", str(ROOT / "recipes/tiny.yaml"),
            f"output_dir={out}", *SMALL]


def _start(tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "DISTILL_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    # own process group with Ctrl-C at its default, as a terminal's foreground job: a pytest started
    # from a script with `&` has SIGINT ignored, which a child inherits (a handler is not inherited)
    with _sigint_handled():
        return subprocess.Popen(_argv(tmp_path / "runs"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, start_new_session=True)


@contextlib.contextmanager
def _sigint_handled():
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _after_steps(tmp_path: Path, proc: subprocess.Popen, count: int) -> None:
    """Wait until ``count`` steps are done (the run is then mid-DAG), for at most five minutes."""
    deadline = time.time() + 300
    while len(_done(tmp_path)) < count and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    time.sleep(0.3)  # the next step has started


def _done(tmp_path: Path) -> dict[str, float]:
    return done_markers(tmp_path / "runs" / "tiny", tmp_path / "cache")


def _lines(stream: str) -> list[str]:
    """What a person reads: stderr without tqdm's progress bar redraws."""
    parts = stream.replace("\r", "\n").splitlines()
    return [p.strip() for p in parts if p.strip() and not p.lstrip().startswith("steps:")]


def _rerun(tmp_path: Path, before: dict[str, float]) -> None:
    """The same command again: it resumes, redoes no finished step and finishes every step."""
    proc = _start(tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    total = int(out.split(" steps, ")[0].split()[-1])
    assert f"{total} steps, {len(before)} already done, {total - len(before)} to run" in out, out
    after = _done(tmp_path)
    assert {sid: after[sid] for sid in before} == before, "a finished step was repeated"
    assert len(after) == total, "a step was lost"


@pytest.mark.parametrize("how, code, says", [
    ("ctrl-c", 130, "interrupted while running "),  # SIGINT to the whole process group, as a terminal does
    ("sigterm", 143, "SIGTERM while running "),  # `timeout` or `kill` to the main process alone
])
def test_an_interrupt_prints_one_line_leaves_no_worker_and_the_rerun_resumes(how, code, says, tmp_path):
    proc = _start(tmp_path)
    _after_steps(tmp_path, proc, 2)
    workers = _workers(proc)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)  # returns only once no worker holds its pipes
    assert proc.returncode == code, err
    lines = _lines(err)
    assert len(lines) == 1, lines  # no traceback, no "leaked semaphore" warning
    assert lines[0].startswith(says)
    assert lines[0].endswith("rerun the same command to resume")
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "a worker outlived its run"
    _rerun(tmp_path, _done(tmp_path))


def _workers(proc: subprocess.Popen) -> list[str]:
    found = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "spawn_main"], check=False,
                           capture_output=True, text=True)
    assert found.stdout.split(), "no worker process"
    return found.stdout.split()


def test_a_killed_worker_fails_its_step_in_one_line_and_the_rerun_resumes(tmp_path):
    proc = _start(tmp_path)
    _after_steps(tmp_path, proc, 2)
    for pid in _workers(proc):
        os.kill(int(pid), signal.SIGKILL)  # what the out-of-memory killer does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "leaked" not in err, err
    failed = [ln for ln in _lines(err) if ln.startswith("failed: ")]
    assert len(failed) == 1 and "its worker process died" in failed[0], _lines(err)
    status = subprocess.run([sys.executable, "-m", "distill.cli", "status", str(tmp_path / "runs" / "tiny")],
                            check=False, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert status.returncode == 1 and "its worker process died" in status.stderr, status.stderr
    _rerun(tmp_path, _done(tmp_path))
