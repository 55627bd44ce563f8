"""One policy for threads, ranks and devices (distill/runtime.py).
Run: pytest tests/unit/test_runtime.py -q"""
from __future__ import annotations

import os

import pytest

from distill import runtime

pytestmark = pytest.mark.unit
CORES = os.cpu_count() or 1


@pytest.mark.parametrize("env, requested, sharing, expected", [
    ({}, 3, 1, 3),  # asked for: taken as it is
    ({"OMP_NUM_THREADS": "2"}, None, 4, 2),  # set by the step that launched this process
    ({"SLURM_CPUS_PER_TASK": "8"}, None, 2, 4),  # a Slurm task's CPUs, shared by its ranks
    ({}, None, 1, CORES),
    ({}, None, CORES * 4, 1),  # never zero
])
def test_thread_count(env, requested, sharing, expected):
    assert runtime.thread_count(env, requested=requested, sharing=sharing) == expected


def test_rank_and_launch():
    assert (runtime.rank({}) == 0 and runtime.rank({"SLURM_PROCID": "3"}) == 3
            and runtime.rank({"RANK": "1"}) == 1)
    assert not runtime.is_launched({}) and runtime.is_launched({"LOCAL_RANK": "0"})


def test_visible_gpus_from_the_environment():
    assert runtime.visible_gpus({"CUDA_VISIBLE_DEVICES": "0,3"}) == 2
    assert runtime.visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == 0


def test_used_devices_counts_what_the_step_claimed_not_every_gpu():
    import torch

    used = runtime.used_devices(None)
    if not torch.cuda.is_available():
        assert used == {"type": "cpu", "count": 1}
    else:  # nothing allocated by this test process beyond what other tests did: at most the touched ones
        assert 1 <= used["count"] <= torch.cuda.device_count()
        assert runtime.used_devices(2)["count"] == 2
