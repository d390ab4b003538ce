"""Files that ship inside the package: the paper's configs and the class lists.

In a checkout, ``vidrec/configs`` and ``vidrec/data_lists`` are links to the
top-level ``configs/`` and ``data_lists/``; a built wheel holds copies. Either
way they are found through ``importlib.resources``, so an installed vidrec
works from any directory.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_dir(name: str) -> Path:
    """A folder of package data (``configs`` or ``data_lists``)."""
    return Path(str(resources.files("vidrec") / name))


CONFIG_DIR = shipped_dir("configs")
LISTS_DIR = shipped_dir("data_lists")


def shipped_configs() -> list:
    """Names of the shipped configs (``kinetics_iresnet3d50.yaml``, ...)."""
    return sorted(p.name for p in CONFIG_DIR.glob("*.yaml")) if CONFIG_DIR.is_dir() else []
