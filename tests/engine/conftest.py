"""Shared fixtures: one small synthetic video set per session and tiny CPU configs."""
import os
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread for the engine tests (restored after each test): small 3D convs
    gain nothing from more, and on a busy 2-core machine oversubscribed OpenMP threads
    make them many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """4 motion classes, 8/3/3 videos per class, 32x32 px, 16 frames: seconds to write."""
    from vidrec.data.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(root, num_classes=4, videos_per_class=(8, 3, 3), size=(32, 32), num_frames=16, seed=0)
    # An odd-sized test list so that distributed evaluation needs padding.
    lines = (root / "test.csv").read_text().splitlines()
    (root / "test_odd.csv").write_text("\n".join(lines[:-1]) + "\n")
    return str(root)


def tiny_opts(root: str, out: str, **overrides) -> list:
    """KEY VALUE overrides (on configs/tiny_cpu.yaml) for a seconds-long run on ``root``."""
    opts = {
        "DATA.PATH_TO_DATA_DIR": root,
        "DATA.TRAIN_LIST": os.path.join(root, "train.csv"),
        "DATA.VAL_LIST": os.path.join(root, "val.csv"),
        "DATA.TEST_LIST": os.path.join(root, "test.csv"),
        "OUTPUT_DIR": out,
        "SOLVER.MAX_EPOCH": 2,
        "SOLVER.STEPS": "[1]",
        "TEST.NUM_ENSEMBLE_VIEWS": 2,
        "TEST.NUM_SPATIAL_CROPS": 1,
        "LOG_PERIOD": 100,
        "NUM_THREADS": 1,
    }
    opts.update({k.replace("__", "."): v for k, v in overrides.items()})
    flat = []
    for k, v in opts.items():
        flat += [k, str(v)]
    return flat


def tiny_cfg(root: str, out: str, **overrides):
    from vidrec.config import load_config

    return load_config(os.path.join(REPO, "configs", "tiny_cpu.yaml"), tiny_opts(root, out, **overrides))


def python_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("VIDREC_FAULT", None)
    return env


PYTHON = sys.executable


def clean_mp_context():
    """Processes forked from a fresh forkserver (torch and vidrec preloaded, so they start warm).

    Not forked from pytest itself: once autograd has run in a process, a fork of
    it cannot use autograd ("Unable to handle autograd's threading ...").
    """
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "vidrec.engine.trainer", "vidrec.data", "vidrec.models"])
    return ctx


def fork_loader_workers():
    """Call first in a ``clean_mp_context`` child: its DataLoader workers are then forked from it.

    A forkserver child inherits the forkserver start method; its workers would
    be children of a new forkserver and outlive a SIGKILLed trainer (their
    parent-death watchdog watches the forkserver), holding the test's output open.
    """
    import multiprocessing as mp

    mp.set_start_method("fork", force=True)
