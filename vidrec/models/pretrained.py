"""A trained model as one self-describing folder: ``model.safetensors`` + ``config.json``.

The folder is what a user hands to a colleague: it rebuilds the network and
says how to feed it (clip length, sampling rate, normalisation, crop sizes,
class names), with no config file, class list or vidrec checkout needed.
Only JSON and safetensors are read, never a pickle.

    save_pretrained(model, cfg, "runs/k400/model", class_names)
    model = from_pretrained("runs/k400/model")     # nn.Module in eval mode
    model.pretrained_cfg["clip"]                    # {"num_frames": 16, "sampling_rate": 4}
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from ..utils.io import atomic_write_bytes, atomic_write_text
from .registry import create
from .weights import CheckpointError, load_weights

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT = "vidrec-model"
FORMAT_VERSION = 1


def _plain(node):
    """A config node as plain JSON values."""
    if hasattr(node, "items"):
        return {k: _plain(v) for k, v in node.items()}
    return list(node) if isinstance(node, tuple) else node


def describe(cfg, class_names: Optional[Sequence[str]] = None) -> Dict:
    """The ``config.json`` document of a model trained with ``cfg``."""
    from ..version import __version__

    m, d = cfg.MODEL, cfg.DATA
    full = _plain(cfg)
    full["MODEL"]["CLASS_NAMES"] = ""  # a path on the trainer's machine; the names travel below
    full["MODEL"]["INFLATE_FROM"] = ""  # the trained weights replace any 2D initialisation
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "vidrec_version": __version__,
        "arch": m.ARCH,
        "model_kwargs": {"num_classes": int(m.NUM_CLASSES), "dropout": float(m.DROPOUT_RATE),
                         "width_mult": float(m.WIDTH_MULT), "temporal": not m.TWO_D},
        "class_names": list(class_names) if class_names else None,
        "clip": {"num_frames": int(d.NUM_FRAMES), "sampling_rate": int(d.SAMPLING_RATE)},
        "input": {"layout": "(N, 3, T, H, W) float32 RGB, x / 255 then (x - mean) / std",
                  "mean": list(d.MEAN), "std": list(d.STD),
                  "test_short_side": int(d.TEST_SHORT_SIDE), "test_crop_size": int(d.TEST_CROP_SIZE),
                  "train_crop_size": int(d.TRAIN_CROP_SIZE)},
        "config": full,
    }


def save_pretrained(model: torch.nn.Module, cfg, directory, class_names: Optional[Sequence[str]] = None) -> Path:
    """Write ``directory/model.safetensors`` and ``directory/config.json`` (each atomically)."""
    from safetensors.torch import save as st_save

    if class_names is not None and len(class_names) != cfg.MODEL.NUM_CLASSES:
        raise ValueError(f"{len(class_names)} class names for MODEL.NUM_CLASSES={cfg.MODEL.NUM_CLASSES}")
    directory = Path(directory)
    state = {k.removeprefix("module."): v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(str(directory / WEIGHTS_NAME), st_save(state))
    atomic_write_text(str(directory / CONFIG_NAME), json.dumps(describe(cfg, class_names), indent=2) + "\n")
    return directory


def read_description(directory) -> Dict:
    """``config.json`` of a model folder, checked; a one-line :class:`CheckpointError` otherwise."""
    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not directory.is_dir():
        raise CheckpointError(f"model folder not found: {directory}")
    if not path.is_file() or not (directory / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{directory} is not a vidrec model folder (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a vidrec model description (format {FORMAT!r} expected)")
    if doc.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {doc['format_version']} is newer than this vidrec reads "
                              f"({FORMAT_VERSION}); upgrade vidrec")
    return doc


def from_pretrained(directory, map_location: str = "cpu") -> torch.nn.Module:
    """Rebuild the network of a model folder with its weights (eval mode).

    The description is kept as ``model.pretrained_cfg`` (clip, input, class names).
    """
    doc = read_description(directory)
    model = create(doc["arch"], **doc["model_kwargs"])
    load_weights(model, Path(directory) / WEIGHTS_NAME, strict=True)
    model.pretrained_cfg = {k: doc[k] for k in ("arch", "class_names", "clip", "input")}
    return model.to(map_location).eval()


def pretrained_config(directory, opts: Sequence[str] = ()):
    """(config node, class names) of a model folder, with ``KEY VALUE`` overrides applied."""
    from ..config import get_cfg
    from ..config.loader import merge_dict, merge_opts, validate

    doc = read_description(directory)
    cfg = get_cfg()
    merge_dict(cfg, doc["config"], str(Path(directory) / CONFIG_NAME))
    merge_opts(cfg, opts)
    validate(cfg)
    names: Optional[List[str]] = doc.get("class_names")
    if names is not None and len(names) != cfg.MODEL.NUM_CLASSES:
        names = None  # the classifier was overridden; indices are reported
    return cfg, names
