"""Tiny model + weights and generated videos with moving grey levels (the shared generated set
``vids`` and the real-sample fixtures ``samples``/``media`` come from tests/conftest.py)."""
import os
import sys

import numpy as np
import pytest

from tests.videos import moving, write_video

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(REPO, "configs", "tiny_cpu.yaml")
PYTHON = sys.executable


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """(config file, weight file) of a randomly initialised iresnet3d_18 x 0.125 (4 frames x 2, 32 px)."""
    import torch

    from vidrec.config import load_config
    from vidrec.models import build_model

    torch.manual_seed(0)
    model = build_model(load_config(TINY))
    # Non-trivial BN statistics so eval-mode outputs are not degenerate.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    torch.save({"format": 1, "model": model.state_dict(), "epoch": 3}, str(path))  # engine checkpoint layout
    return TINY, str(path)


@pytest.fixture(scope="session")
def predictor(tiny_weights):
    from vidrec.inference.predictor import Predictor

    return Predictor(tiny_weights[0], tiny_weights[1], device="cpu", batch_size=4)


@pytest.fixture(scope="session")
def gen(tmp_path_factory, vids):
    """Generated videos: name -> path (25 fps, 48x64, moving grey levels), plus the broken files of ``vids``."""
    d = tmp_path_factory.mktemp("gen")
    rng = np.random.default_rng(0)
    noise = lambda i: rng.integers(0, 255)  # noqa: E731
    v = {"v50": write_video(d / "v50.mp4", n=50, values=moving),
         "v30": write_video(d / "v30.mp4", n=30, values=moving),
         "short": write_video(d / "short.mp4", n=3, values=moving),
         "noise": write_video(d / "noise.mp4", n=20, values=noise)}
    v.update({k: vids[k] for k in ("zero", "text", "audio", "missing")})
    return v
