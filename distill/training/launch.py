"""Multi-process entry point: ``python -m distill.training.launch JOB.json`` on every rank.

Run it under a launcher that starts the processes, for example
``accelerate launch --config_file recipes/accelerate/zero2.yaml -m distill.training.launch job.json``
or ``torchrun --nproc_per_node 2 -m distill.training.launch job.json`` (the job names the config).

``run(job, allocation)`` is the one launcher code path (the local executor, Slurm jobs and tests all
use it): the number of processes always comes from the allocation (``distill.allocation``), never
from the YAML's ``num_processes``. On one node it runs ``accelerate launch`` here; on several it
runs ``srun`` with one task per node, each of which calls this module with ``--node``, which execs
``accelerate launch`` with that node's machine rank (``SLURM_NODEID``) and rank 0's address. Only
the calling process (the step) prepares inputs and writes the step's files; the launched processes
only train. ``run`` returns the ``TrainResult`` that rank 0 wrote to ``out_dir/result.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from distill.allocation import Allocation, from_environment
from distill.training.job import TrainJob, TrainResult, claim_out_dir, finished_result

# What run() tells each node's `--node` process (srun passes the caller's environment on).
_NODE_ENV = ("DISTILL_NODES", "DISTILL_PROCESSES_PER_NODE", "DISTILL_MAIN_ADDRESS", "DISTILL_MAIN_PORT")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(job_json: str | Path, config: str | Path, *, num_processes: int | None = None,
                   num_machines: int = 1, machine_rank: int = 0, main_process_ip: str | None = None,
                   main_process_port: int | None = None) -> list[str]:
    """argv of ``accelerate launch`` for one node; Slurm fills machine rank and address per node.

    ``num_processes`` is the total over all machines (accelerate's convention); None keeps the
    config's (launchers always pass it). The YAML's ``num_processes``/``num_machines``/
    ``machine_rank`` are placeholders these arguments replace.
    """
    from distill.distributed import resolve_config

    if num_machines > 1 and (main_process_ip is None or main_process_port is None):
        raise ValueError(f"num_machines={num_machines}: give main_process_ip and main_process_port "
                         f"(rank 0's address, the same on every node)")
    argv = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(resolve_config(config)),
            "--num_machines", str(num_machines), "--machine_rank", str(machine_rank)]
    if num_processes is not None:
        argv += ["--num_processes", str(num_processes)]
    if main_process_ip is not None:
        argv += ["--main_process_ip", main_process_ip]
    argv += ["--main_process_port", str(main_process_port or free_port())]
    return argv + ["-m", "distill.training.launch", str(job_json)]


def srun_command(job_json: str | Path, allocation: Allocation) -> list[str]:
    """argv of the ``srun`` that starts one launcher per node of the current Slurm job."""
    n = allocation.nodes
    return ["srun", f"--nodes={n}", f"--ntasks={n}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
            sys.executable, "-m", "distill.training.launch", "--node", str(job_json)]


def node_command(job_json: str | Path, config: str | Path, env: dict[str, str]) -> list[str]:
    """This node's ``accelerate launch`` argv, inside ``srun``: machine rank = ``SLURM_NODEID``."""
    missing = [k for k in (*_NODE_ENV, "SLURM_NODEID") if not env.get(k)]
    if missing:
        raise RuntimeError(f"launch --node runs under srun from launch.run; {missing[0]} is not set")
    nodes, per_node = int(env["DISTILL_NODES"]), int(env["DISTILL_PROCESSES_PER_NODE"])
    return launch_command(job_json, config, num_processes=nodes * per_node, num_machines=nodes,
                          machine_rank=int(env["SLURM_NODEID"]), main_process_ip=env["DISTILL_MAIN_ADDRESS"],
                          main_process_port=int(env["DISTILL_MAIN_PORT"]))


def _command(job_json: Path, config: str, allocation: Allocation) -> tuple[list[str], dict[str, str]]:
    env = os.environ.copy()
    if allocation.nodes == 1:
        return launch_command(job_json, config, num_processes=allocation.processes), env
    from distill.slurm import hostnames

    # rank 0 runs on the first node of the job, which is where this (the batch) process runs
    env.update(DISTILL_NODES=str(allocation.nodes),
               DISTILL_PROCESSES_PER_NODE=str(allocation.processes_per_node),
               DISTILL_MAIN_ADDRESS=hostnames(env["SLURM_JOB_NODELIST"])[0],
               DISTILL_MAIN_PORT=str(free_port()))
    return srun_command(job_json, allocation), env


def run(job: TrainJob, tracker: Callable[[dict, int], None] | None = None,
        allocation: Allocation | None = None, timeout_s: float | None = None) -> TrainResult:
    """Run ``job`` with the processes of ``allocation`` (default: what this environment was given);
    stream rank 0's metrics to ``tracker``."""
    if not job.config_path:
        raise ValueError("launch.run needs a job with an accelerate config (train.accelerate_config)")
    allocation = allocation or from_environment()
    if allocation.nodes > 1 and "SLURM_JOB_ID" not in os.environ:
        raise ValueError(f"training on {allocation.nodes} nodes runs inside a Slurm job (none here)")
    out = Path(job.out_dir)
    done = finished_result(job)
    if done is not None:
        return done
    out.mkdir(parents=True, exist_ok=True)
    claim_out_dir(job)
    job_json = out / "job.json"
    argv, env = _command(job_json, job.config_path, allocation)
    metrics, seen = out / "metrics.jsonl", _steps_logged(out / "metrics.jsonl")
    with open(out / "launch.log", "ab") as log:
        log.write(f"distill: {allocation.nodes} node(s) x {allocation.processes_per_node} process(es): "
                  f"{' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = None if timeout_s is None else time.time() + timeout_s
        while proc.poll() is None:
            seen = _forward(metrics, seen, tracker)
            if deadline is not None and time.time() > deadline:
                proc.kill()
                raise TimeoutError(f"training {job.out_dir} ran past {timeout_s} s (see launch.log)")
            time.sleep(0.5)
        _forward(metrics, seen, tracker)
    if proc.returncode != 0:
        tail = (out / "launch.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"training {job.out_dir} failed with exit code {proc.returncode}:\n{tail}")
    return TrainResult.from_dict(json.loads((out / "result.json").read_text()))


def _steps_logged(path: Path) -> int:
    """The last step already in metrics.jsonl (a resumed run re-sends nothing before it)."""
    if not path.exists():
        return 0
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()]
    return max(steps, default=0)


def _forward(path: Path, seen: int, tracker) -> int:
    """Send metric lines newer than step ``seen`` to the tracker; return the last step sent."""
    if tracker is None or not path.exists():
        return seen
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line being written
            continue
        if record["step"] > seen:
            tracker(record, record["step"])
            seen = record["step"]
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train one distill student (run on every rank).")
    parser.add_argument("job", help="TrainJob JSON (TrainJob.save); its out_dir receives the results")
    parser.add_argument("--progress", action="store_true", help="show a progress bar on rank 0")
    parser.add_argument("--node", action="store_true",
                        help="(under srun, from launch.run) exec this node's accelerate launch")
    args = parser.parse_args(argv)
    job = TrainJob.load(args.job)
    if args.node:
        command = node_command(args.job, job.config_path, dict(os.environ))
        os.execv(command[0], command)
    if args.progress:
        job = TrainJob.from_dict({**job.to_dict(), "progress": True})
    if job.objective != "sft":
        from distill.training.preference import train_preference_here as train_here
    else:
        from distill.training.trainer import train_here

    result = train_here(job)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"steps": result.steps, "final_loss": result.final_loss,
                          "tokens_per_s": round(result.tokens_per_s, 1), "wall_s": round(result.wall_s, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
