"""DATA_LOADER.NUM_WORKERS auto: the cores this process may use, shared among torchrun's processes."""
import os

import pytest

from vidrec.config import ConfigError, load_config
from vidrec.utils import cpus


def test_auto_leaves_one_core_of_the_share_to_the_loop(monkeypatch):
    monkeypatch.setattr(cpus, "available_cores", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert cpus.loader_workers("auto")[0] == 15
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun, 4 processes on this node
    n, why = cpus.loader_workers("auto")
    assert n == 3 and "16 cores / 4 processes" in why
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert cpus.loader_workers("auto")[0] == 0  # a share of one core: load in the loop
    monkeypatch.setattr(cpus, "available_cores", lambda: 256)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert cpus.loader_workers("auto")[0] == cpus.MAX_AUTO_WORKERS
    assert cpus.loader_workers(3) == (3, "DATA_LOADER.NUM_WORKERS")


def test_available_cores_follows_affinity_and_quota(tmp_path, monkeypatch):
    assert cpus.available_cores() == len(os.sched_getaffinity(0)) or cpus.cgroup_cpu_limit() is not None
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")  # 1.5 cores
    assert cpus.cgroup_cpu_limit(str(quota)) == 1.5
    quota.write_text("max 100000\n")
    assert cpus.cgroup_cpu_limit(str(quota)) is None
    assert cpus.cgroup_cpu_limit(str(tmp_path / "absent")) is None
    monkeypatch.setattr(cpus, "cgroup_cpu_limit", lambda: 1.5)
    assert cpus.available_cores() == 1


def test_num_workers_takes_a_count_or_auto():
    assert load_config("tiny_cpu", ["DATA_LOADER.NUM_WORKERS", "auto"]).DATA_LOADER.NUM_WORKERS == "auto"
    assert load_config("tiny_cpu", ["DATA_LOADER.NUM_WORKERS", "3"]).DATA_LOADER.NUM_WORKERS == 3
    assert load_config("kinetics_iresnet3d50").DATA_LOADER.NUM_WORKERS == "auto"
    with pytest.raises(ConfigError, match="DATA_LOADER.NUM_WORKERS must be >= 0, got -1"):
        load_config("tiny_cpu", ["DATA_LOADER.NUM_WORKERS", "-1"])
    with pytest.raises(ConfigError, match="expects a whole number or auto, got 'many'"):
        load_config("tiny_cpu", ["DATA_LOADER.NUM_WORKERS", "many"])
