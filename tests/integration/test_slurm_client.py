"""distill.slurm against a real Slurm: arrays, afterok dependencies, failures, rendered templates,
USR1 + requeue. Needs a running cluster (else skipped; under CI=true it fails):

    sudo bash slurm/local/start.sh
    pytest -m integration tests/integration/test_slurm_client.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from distill import slurm

pytestmark = pytest.mark.integration

TEMPLATES = Path(__file__).resolve().parents[2] / "slurm" / "templates"
SMALL = {"cpus_per_task": 1, "mem": "100M", "time": 5}  # leave room for others on a 2-core machine


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/bash\nset -euo pipefail\n" + body)
    return path


def _opts(tmp_path: Path) -> list[str]:
    # Logs next to the test's files, not in pytest's working directory.
    return [f"--chdir={tmp_path}", f"--output={tmp_path}/%x-%A_%a.out", "--mem=100M", "--time=5"]


def test_array_tasks_run_then_afterok_dependant(tmp_path: Path, slurm_cluster) -> None:
    array = slurm.submit(
        _script(tmp_path, "tasks.sh", f"echo $SLURM_ARRAY_TASK_ID > {tmp_path}/task_$SLURM_ARRAY_TASK_ID\n"),
        array="0-2",
        extra=_opts(tmp_path),
    )
    after = slurm.submit(
        _script(tmp_path, "after.sh", f"ls {tmp_path} | grep -c '^task_' > {tmp_path}/after\n"),
        dependency=[array],
        extra=_opts(tmp_path),
    )

    states = slurm.wait([array, after], poll=0.2, timeout=60)

    assert states == {
        f"{array}_0": "COMPLETED",
        f"{array}_1": "COMPLETED",
        f"{array}_2": "COMPLETED",
        after: "COMPLETED",
    }
    assert [(tmp_path / f"task_{i}").read_text().strip() for i in range(3)] == ["0", "1", "2"]
    assert (tmp_path / "after").read_text().strip() == "3"  # it ran after all three tasks
    assert slurm.job_states([f"{array}_1"]) == {f"{array}_1": "COMPLETED"}


def test_failed_task_cancels_dependant_instead_of_leaving_it_pending(tmp_path: Path, slurm_cluster) -> None:
    array = slurm.submit(
        _script(tmp_path, "tasks.sh", '[ "$SLURM_ARRAY_TASK_ID" != 1 ] || exit 3\n'),
        array="0-1",
        extra=_opts(tmp_path),
    )
    after = slurm.submit(
        _script(tmp_path, "after.sh", f"touch {tmp_path}/after_ran\n"),
        dependency=[array],
        extra=_opts(tmp_path),
    )

    states = slurm.wait([array, after], poll=0.2, timeout=60)

    assert states[f"{array}_0"] == "COMPLETED"
    assert states[f"{array}_1"] == "FAILED"
    assert states[after] == "CANCELLED"
    assert not (tmp_path / "after_ran").exists()


def test_every_rendered_template_is_accepted_by_sbatch(tmp_path: Path, slurm_cluster) -> None:
    templates = sorted(TEMPLATES.glob("*.sbatch"))
    assert {t.stem for t in templates} >= {"step"}  # one script for every kind of step
    resources = {**SMALL, "partition": slurm_cluster.partition, "nodes": 1, "ntasks_per_node": 1}
    for template in templates:
        script = tmp_path / template.name
        script.write_text(
            slurm.render_sbatch(
                template.read_text(),
                job_name=f"t-{template.stem}",
                resources=resources,
                command="true",
                log_path=tmp_path / f"{template.stem}.log",
                array="0-3",
            )
        )
        assert "to start" in slurm.submit(script, test_only=True), template.name


def test_impossible_request_fails_at_submit_naming_the_script(tmp_path: Path, slurm_cluster) -> None:
    script = tmp_path / "huge.sbatch"
    script.write_text(
        slurm.render_sbatch(
            (TEMPLATES / "step.sbatch").read_text(),
            job_name="huge",
            resources={**SMALL, "cpus_per_task": slurm_cluster.cpus * 64},
            command="true",
            log_path=tmp_path / "huge.log",
        )
    )
    with pytest.raises(slurm.SlurmError, match=r"sbatch .*huge\.sbatch: .*(processors|not available)"):
        slurm.submit(script)
    with pytest.raises(slurm.SlurmError, match=r"huge\.sbatch"):
        slurm.submit(script, test_only=True)


def test_rendered_scripts_run_the_command_and_keep_its_exit_status(tmp_path: Path, slurm_cluster) -> None:
    jobs = {}
    for stem, code in [("train", "print('trained on one node')"), ("eval", "import sys; sys.exit(3)")]:
        script = tmp_path / f"{stem}.sbatch"
        script.write_text(
            slurm.render_sbatch(
                (TEMPLATES / "step.sbatch").read_text(),
                job_name=stem,
                resources=SMALL,
                command=f'{sys.executable} -c "{code}"',
                log_path=tmp_path / f"{stem}.log",
                env={"DISTILL_T": "x y"},
            )
        )
        jobs[stem] = slurm.submit(script)

    states = slurm.wait(jobs.values(), poll=0.2, timeout=60)

    assert states == {jobs["train"]: "COMPLETED", jobs["eval"]: "FAILED"}
    assert "trained on one node" in (tmp_path / "train.log").read_text()
    assert "step exited with 3" in (tmp_path / "eval.log").read_text()


def _wait_for_text(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"{path} never showed {text!r}"
        time.sleep(0.2)


STEP = """
import os, signal, sys, time
restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
if restarts:
    print(f"step resumed after requeue {restarts}", flush=True)
    sys.exit(0)
def save_and_exit(*_):
    print("step got USR1, saved progress", flush=True)
    sys.exit(0)
signal.signal(signal.SIGUSR1, save_and_exit)
print("step running", flush=True)
time.sleep(60)
sys.exit(1)
"""


def test_usr1_is_passed_to_the_step_and_the_job_requeues_with_its_log_kept(
    tmp_path: Path, slurm_cluster
) -> None:
    (tmp_path / "step.py").write_text(STEP)
    script = tmp_path / "gen.sbatch"
    log = tmp_path / "gen.log"
    script.write_text(
        slurm.render_sbatch(
            (TEMPLATES / "step.sbatch").read_text(),
            job_name="requeue",
            resources=SMALL,
            command=f"{sys.executable} {tmp_path / 'step.py'}",
            log_path=log,
        )
    )
    job = slurm.submit(script)
    _wait_for_text(log, "step running", timeout=30)

    # What Slurm does before the time limit with --signal=B:USR1@<s>.
    subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
    states = slurm.wait([job], poll=0.2, timeout=60)

    assert states == {job: "COMPLETED"}
    text = log.read_text()
    for line in [
        "step running",
        "USR1 received",
        "step got USR1, saved progress",
        f"requeueing job {job}",
        "restart 1",
        "step resumed after requeue 1",
    ]:
        assert line in text, f"{line!r} missing from {log}:\n{text}"
    assert text.index("step running") < text.index("step resumed")  # --open-mode=append kept run 1


def test_unknown_job_reads_unknown_and_cancel_ends_a_pending_job(tmp_path: Path, slurm_cluster) -> None:
    assert slurm.job_states(["999999999"]) == {"999999999": "UNKNOWN"}
    held = slurm.submit(_script(tmp_path, "held.sh", "true\n"), extra=[*_opts(tmp_path), "--hold"])
    slurm.cancel([held])
    assert slurm.wait([held], poll=0.2, timeout=30) == {held: "CANCELLED"}
    slurm.cancel([held])  # cancelling a finished job is not an error
