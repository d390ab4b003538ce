"""One run per OUTPUT_DIR: an exclusive lock, no mixing of a new run with an old one, and a resumed
config compared with the one the checkpoint was trained with.

* :func:`acquire_lock` holds ``flock(LOCK_EX)`` on ``OUTPUT_DIR/.lock`` (pid, host and start time
  written into it) for as long as the training runs. A second training into the same folder fails
  at once with one line naming the holder. The kernel drops the lock when its process dies, so a
  killed (even SIGKILLed) run never blocks its restart (forked children, e.g. data-loader workers
  that outlive it, close their inherited copy at fork). Under DDP only rank 0 locks; every rank
  raises the same error.
* :func:`check_fresh_start` refuses to start a new run (``TRAIN.AUTO_RESUME False``) in a folder
  that already holds a run's checkpoints or final weights.
* :func:`compare_config` lists what changed since the checkpoint: refuses the changes that make its
  weights meaningless (architecture, classes, clip shape, normalisation), warns about the ones that
  change training, and just mentions the harmless ones (logging, workers, checkpoint cadence, test).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
import weakref
from typing import Dict, List, Optional, Tuple

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None

import yaml

logger = logging.getLogger("vidrec")

LOCK_NAME = ".lock"

# Changes that make a checkpoint's weights meaningless for the new config: refused on resume.
REFUSED = ("MODEL.ARCH", "MODEL.NUM_CLASSES", "MODEL.WIDTH_MULT", "MODEL.TWO_D", "DATA.NUM_FRAMES",
           "DATA.SAMPLING_RATE", "DATA.TRAIN_CROP_SIZE", "DATA.TEST_CROP_SIZE", "DATA.MEAN", "DATA.STD")
# Changes that leave the training itself alone (keys, or prefixes ending in "."): mentioned only.
HARMLESS = ("OUTPUT_DIR", "LOG_PERIOD", "NUM_THREADS", "DEVICE", "MEMORY_FORMAT", "DATA_LOADER.", "TEST.",
            "TRAIN.AUTO_RESUME", "TRAIN.RESUME_FROM", "TRAIN.KEEP_LAST", "TRAIN.CHECKPOINT_PERIOD",
            "TRAIN.CHECKPOINT_ITERS", "TRAIN.CHECKPOINT_FILE", "MODEL.INFLATE_FROM", "MODEL.CLASS_NAMES",
            "DATA.DECODER", "DATA.DECODER_FALLBACK")


class RunFolderError(ValueError):
    """OUTPUT_DIR cannot be used as asked: locked by another run, holds another run, or the config
    changed in a way the checkpoint cannot follow."""


# ---------------------------------------------------------------------------- lock
_HELD: "weakref.WeakSet[RunLock]" = weakref.WeakSet()


def _drop_in_child() -> None:
    """In a forked child (e.g. a DataLoader worker): close the inherited lock descriptors.

    An flock belongs to the open file, which a fork shares: a worker that outlives its SIGKILLed
    trainer would otherwise keep the folder locked. Closing the child's copy leaves the parent's lock.
    """
    for lock in list(_HELD):
        f, lock._file = lock._file, None
        try:
            f.close()
        except (OSError, AttributeError):
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_in_child)


class RunLock:
    """``flock`` on ``folder/.lock`` for the life of this object (or until :meth:`release`)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self._file = None

    def acquire(self) -> "RunLock":
        os.makedirs(self.folder, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")
        if fcntl is None:
            f.close()
            logger.info("no file locking on this platform: a second training into %s would not be detected",
                        self.folder)
            return self
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise RunFolderError(f"OUTPUT_DIR {self.folder} is in use by another training ({holder(self.path)}; "
                                 f"lock {self.path}): wait for it to finish or stop it, or use another "
                                 f"OUTPUT_DIR") from None
        except OSError as e:  # a file system without locks
            f.close()
            logger.warning("could not lock %s (%s): a second training into this folder would not be detected",
                           self.path, e)
            return self
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                            "since": time.strftime("%Y-%m-%d %H:%M:%S %z")}) + "\n")
        f.flush()
        self._file = f
        _HELD.add(self)
        return self

    @property
    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        try:
            _HELD.discard(self)
        except (AttributeError, TypeError):  # interpreter shutdown: module globals already gone
            pass
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None

    def __del__(self):
        self.release()


def holder(path: str) -> str:
    """'pid N on host H since T' from a lock file (best effort)."""
    try:
        with open(path, encoding="utf-8") as f:
            info = json.loads(f.read() or "{}")
        who = f"pid {info['pid']} on host {info['host']}"
        if info["pid"] == os.getpid() and info["host"] == socket.gethostname():
            who += " (this process)"
        return f"{who}, running since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its details yet"


def acquire_lock(folder: str, ctx=None) -> RunLock:
    """Lock ``folder`` (rank 0 only under DDP); every rank raises the same RunFolderError when it is taken."""
    from . import distributed

    lock, error, exc = RunLock(folder), None, None
    if ctx is None or ctx.is_main:
        try:
            lock.acquire()
        except Exception as e:  # noqa: BLE001 - e.g. an OUTPUT_DIR that cannot be created: tell the others first
            error, exc = str(e), e
    if ctx is not None and ctx.distributed:
        error = distributed.broadcast_object(error)
    if exc is not None:
        raise exc
    if error:
        raise RunFolderError(error)
    return lock


# ---------------------------------------------------------------------------- an old run in the folder
def run_outputs(output_dir: str, ckpt_dir: str) -> List[str]:
    """What in ``output_dir`` shows a training ran there: anything in the checkpoints folder (even
    corrupt or set-aside checkpoints; not temp files), the final weights."""
    found = []
    if os.path.isdir(ckpt_dir):
        found += sorted(os.path.join(os.path.basename(ckpt_dir), n) for n in os.listdir(ckpt_dir)
                        if not n.startswith("."))
    if os.path.isfile(os.path.join(output_dir, "model_final.safetensors")):
        found.append("model_final.safetensors")
    return found


def _listing(items: List[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def check_fresh_start(output_dir: str, ckpt_dir: str) -> None:
    """A new run (TRAIN.AUTO_RESUME False) into a folder that holds another run: refused."""
    found = run_outputs(output_dir, ckpt_dir)
    if found:
        raise RunFolderError(f"OUTPUT_DIR {output_dir} already holds a training run ({_listing(found)}); "
                             f"TRAIN.AUTO_RESUME False would mix a new run into it: use a new OUTPUT_DIR, or "
                             f"TRAIN.AUTO_RESUME True to continue that run")


# ---------------------------------------------------------------------------- config changes
def _flat(d, prefix: str = "") -> Dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _show(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_harmless(key: str) -> bool:
    return any(key == h or (h.endswith(".") and key.startswith(h)) for h in HARMLESS)


def compare_config(saved_yaml: str, cfg) -> Tuple[List[str], List[str], List[str]]:
    """(refused, changed, harmless): 'KEY old -> new' for each key that differs from the saved config.

    A key the saved config lacks (added by a newer vidrec) counts only when set away from its default.
    """
    from ..config.defaults import get_cfg

    saved = _flat(yaml.safe_load(saved_yaml) or {})
    new = _flat(yaml.safe_load(cfg.dump()) or {})
    default = _flat(yaml.safe_load(get_cfg().dump()) or {})
    refused, changed, harmless = [], [], []
    for key in sorted(new):
        if key in saved:
            if saved[key] == new[key]:
                continue
            line = f"{key} {_show(saved[key])} -> {_show(new[key])}"
        elif key in default and new[key] == default[key]:
            continue
        else:
            line = f"{key} (not in the checkpoint's config) -> {_show(new[key])}"
        if key in REFUSED:
            refused.append(line)
        elif _is_harmless(key):
            harmless.append(line)
        else:
            changed.append(line)
    return refused, changed, harmless


def check_config(saved_yaml: Optional[str], cfg, source: str) -> List[str]:
    """Compare ``cfg`` with the config ``source`` was trained with: RunFolderError for refused changes;
    -> the warning lines for the changes that alter training (the harmless ones are logged here)."""
    if not saved_yaml:
        return []
    try:
        refused, changed, harmless = compare_config(saved_yaml, cfg)
    except yaml.YAMLError as e:
        logger.warning("could not compare the config with %s's (%s)", source, e)
        return []
    if refused:
        raise RunFolderError(
            f"cannot resume from {source}: the config changed what its weights mean: {'; '.join(refused)}. "
            f"Restore these values, or train into a new OUTPUT_DIR (TRAIN.CHECKPOINT_FILE {source} starts from "
            f"its weights where they fit)")
    if harmless:
        logger.info("config changes since %s that do not affect training: %s", os.path.basename(source),
                    "; ".join(harmless))
    return [f"config changed since {os.path.basename(source)}: {line} (training continues with the new value; "
            f"it is no longer an exact continuation)" for line in changed]
