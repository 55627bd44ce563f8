"""Fixtures for integration tests. Tests that need a real Slurm take the `slurm_cluster` fixture:
it skips them when no controller answers (start one with `sudo bash slurm/local/start.sh`), except
under CI=true, where a missing cluster is a failure, not a skip."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import pytest

READY_STATES = {"idle", "mixed", "allocated", "completing"}


@dataclass(frozen=True, slots=True)
class SlurmCluster:
    partition: str  # the default partition
    cpus: int  # CPUs of its largest node
    nodes: int = 1  # nodes up


def _probe() -> SlurmCluster | str:
    """The cluster, or why it cannot be used."""
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%P %c %T"], capture_output=True, text=True, timeout=20, check=False
        )
    except FileNotFoundError:
        return "sinfo not found (no Slurm client installed)"
    except subprocess.TimeoutExpired:
        return "sinfo gave no answer within 20 s"
    if proc.returncode != 0:
        return f"sinfo failed: {proc.stderr.strip() or proc.stdout.strip()}"
    nodes = [line.split() for line in proc.stdout.splitlines() if len(line.split()) == 3]
    # "idle*" and the like (a trailing flag) mean not responding or powered down: not usable.
    ready = [(part, int(cpus)) for part, cpus, state in nodes if state in READY_STATES]
    if not ready:
        return f"no node is up: {proc.stdout.strip() or 'no nodes'}"
    default = next((p for p, _ in ready if p.endswith("*")), ready[0][0])
    return SlurmCluster(partition=default.rstrip("*"), cpus=max(c for _, c in ready), nodes=len(ready))


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    found = _probe()
    if isinstance(found, SlurmCluster):
        return found
    message = f"no usable Slurm cluster: {found}; start one with: sudo bash slurm/local/start.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: integration tests must not be skipped)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def two_node_cluster(slurm_cluster) -> SlurmCluster:
    """A cluster with at least two nodes up (``sudo DISTILL_SLURM_NODES=2 bash slurm/local/start.sh``)."""
    if slurm_cluster.nodes >= 2:
        return slurm_cluster
    message = (f"the Slurm cluster has {slurm_cluster.nodes} node(s) up, these tests need 2; start one with: "
               "sudo DISTILL_SLURM_NODES=2 bash slurm/local/start.sh")
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: integration tests must not be skipped)", pytrace=False)
    pytest.skip(message)
