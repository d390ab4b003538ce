"""How many CPU cores this process may use, and the loader workers that follow from it.

``os.cpu_count()`` counts the machine's cores, not the ones a container, a
``taskset`` or a scheduler gives the process, and under torchrun every process
on the node would take them all. ``DATA_LOADER.NUM_WORKERS auto`` therefore
starts from the cores this process may run on (affinity, and a cgroup CPU
quota when one is set) divided among the processes on the node.
"""
from __future__ import annotations

import math
import os
from typing import Optional, Tuple, Union

# Past this many workers per process a loader only holds more decoded clips in memory.
MAX_AUTO_WORKERS = 16


def cgroup_cpu_limit(path: str = "/sys/fs/cgroup/cpu.max") -> Optional[float]:
    """The cgroup v2 CPU quota in cores ("max": none), or None where there is none to read."""
    try:
        with open(path) as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def processes_on_node() -> int:
    """Training processes sharing this machine (torchrun's LOCAL_WORLD_SIZE; 1 without torchrun)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def loader_workers(setting: Union[int, str]) -> Tuple[int, str]:
    """``DATA_LOADER.NUM_WORKERS`` -> (workers, why): a number as given; "auto" leaves one core of
    this process's share to the training loop and gives the rest to decoding (0 with a share of one
    core: a worker would only compete with the loop, and cost the inter-process copy)."""
    if setting != "auto":
        return int(setting), "DATA_LOADER.NUM_WORKERS"
    cores, procs = available_cores(), processes_on_node()
    share = max(1, cores // procs)
    workers = min(share - 1, MAX_AUTO_WORKERS)
    per = f" / {procs} processes on this node" if procs > 1 else ""
    return workers, f"auto: {cores} cores{per}, one left to the training loop"
