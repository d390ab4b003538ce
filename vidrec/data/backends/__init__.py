"""Decoder backends, in one table: adding a backend is one module and one entry here.

Each backend module provides:

* ``unavailable() -> str``: why it cannot run on this machine ("" when it can);
* ``refuses(index) -> str``: why it must not read this file ("" when it may), from the
  file's :class:`~vidrec.data.video_index.VideoIndex` (container, codec, timestamps);
  the rules come from the decoder matrix in ``tests/data/test_backend_matrix.py``;
* ``read(path, ids, index) -> Decoded``: the frames ``ids`` (sorted, unique, in
  presentation order, counted from the first frame) as RGB uint8 arrays with the
  display rotation applied; raises :class:`~vidrec.data.errors.VideoError`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

# name -> module (imported on first use, so a missing optional package costs nothing).
BACKENDS: Dict[str, str] = {
    "decord": "vidrec.data.backends.decord_backend",
    "pyav": "vidrec.data.backends.pyav_backend",
    "torchcodec": "vidrec.data.backends.torchcodec_backend",
}


@dataclass
class Decoded:
    """What a backend read: ``frames[id]``, and where decoding stopped if the stream broke."""
    frames: Dict[int, np.ndarray] = field(default_factory=dict)
    stopped_at: int = -1   # frames that decoded before the stream broke (-1: it did not break)
    stop_reason: str = ""


def backend(name: str):
    """The module of backend ``name``; ValueError for an unknown name."""
    if name not in BACKENDS:
        raise ValueError(f"unknown decoder backend {name!r}; choose from {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])


def names() -> List[str]:
    return list(BACKENDS)
