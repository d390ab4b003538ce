"""Checkpoints: atomic writes, last-K + best retention, safe loading, safetensors export.

Files live in OUTPUT_DIR/checkpoints/ as ``ckpt_e{EPOCH}_i{ITER}.pt`` where
(EPOCH, ITER) is the position training resumes from. A checkpoint is written
to a hidden temp file, fsynced and renamed, so a crash leaves either the old
set or the complete new file. Everything is loaded with
``torch.load(weights_only=True)`` (or safetensors): a file that needs
arbitrary unpickling is refused, because unpickling can run code.

Integrity: every checkpoint training writes is listed, with its sha256, size
and position, in a manifest (OUTPUT_DIR/checkpoints.json, written atomically
right after the file). A checkpoint is used for resuming only when its bytes
match the manifest; a mismatching one is renamed ``*.corrupt`` and the previous
good one is used, with a warning naming the bad file. Pruning deletes only
checkpoints the manifest lists (what the run wrote), never by name alone, and
never the newest ones or the last healthy one.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import time
from typing import Dict, Iterable, List, Optional, Tuple

import torch

from ..models.weights import (  # noqa: F401  (re-exported: the engine's loading API)
    CheckpointError, UnsafeCheckpointError, load_weights, read_state_dict, safe_load)
from ..utils.io import atomic_write_bytes, atomic_write_text, remove_stale_temp_files  # noqa: F401  (re-exported)
from . import faults

logger = logging.getLogger(__name__)

CKPT_RE = re.compile(r"^ckpt_e(\d{4,})_i(\d{6,})\.pt$")
BEST_NAME = "best.pt"
FORMAT_VERSION = 1


def checkpoint_name(epoch: int, it: int) -> str:
    return f"ckpt_e{epoch:04d}_i{it:06d}.pt"


def list_checkpoints(folder: str) -> List[str]:
    """Complete checkpoints, oldest first (temp files never match the pattern)."""
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        m = CKPT_RE.match(name)
        if m:
            found.append(((int(m.group(1)), int(m.group(2))), os.path.join(folder, name)))
    return [p for _, p in sorted(found)]


def save_checkpoint(state: Dict, path: str) -> bytes:
    """Serialise and atomically write ``state``; -> the bytes written (not registered in a manifest)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    write_bytes(path, data)
    return data


def write_bytes(path: str, data: bytes) -> None:
    """Atomically write a serialised checkpoint (a kill point for the tests: ``VIDREC_FAULT=ckpt_write:N``)."""
    atomic_write_bytes(path, data, mid_write_hook=faults.checkpoint_write_hook())


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def position(name: str) -> Optional[Tuple[int, int]]:
    m = CKPT_RE.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


class Manifest:
    """What training wrote into a checkpoints folder: name -> {sha256, bytes, epoch, iter, global_step, healthy}.

    Stored as JSON beside the folder (``<folder>.json``: OUTPUT_DIR/checkpoints.json), so the
    checkpoints folder holds checkpoints only. Missing file: an empty manifest (a new run, or
    checkpoints written by an older vidrec, whose integrity cannot be checked).
    """

    def __init__(self, folder: str, path: Optional[str] = None, read: bool = True):
        self.folder = folder
        self.path = path or os.path.normpath(folder) + ".json"
        self.files: Dict[str, Dict] = {}
        self.found = False
        if read and os.path.isfile(self.path):
            try:
                with open(self.path, encoding="utf-8") as f:
                    data = json.load(f)
                self.files = {str(k): dict(v) for k, v in data["files"].items()}
                self.found = True
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                logger.warning("checkpoint manifest %s is unreadable (%s): the checkpoints' integrity cannot be "
                               "checked", self.path, e)

    def get(self, name: str) -> Optional[Dict]:
        return self.files.get(name)

    def add(self, name: str, data: bytes, state: Dict, **extra) -> Dict:
        entry = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                 "epoch": int(state.get("epoch", 0)), "iter": int(state.get("iter", 0)),
                 "global_step": int(state.get("global_step", 0)), "written": round(time.time(), 3), **extra}
        self.files[name] = entry
        return entry

    def drop(self, name: str) -> None:
        self.files.pop(name, None)

    def save(self) -> None:
        body = {"format": 1, "about": "sha256 and position of every checkpoint training wrote in "
                f"{os.path.basename(os.path.normpath(self.folder))}/; a file whose bytes differ is never resumed from",
                "files": dict(sorted(self.files.items()))}
        atomic_write_text(self.path, json.dumps(body, indent=1) + "\n")
        self.found = True

    def verify(self, path: str) -> Optional[bool]:
        """True: the bytes match the manifest; False: they differ (corrupt); None: not listed."""
        entry = self.get(os.path.basename(path))
        if entry is None:
            return None
        try:
            if os.path.getsize(path) != entry.get("bytes"):
                return False
            return sha256_file(path) == entry.get("sha256")
        except OSError:
            return False


def load_verified(path: str, manifest: Optional[Manifest]) -> Dict:
    """``safe_load`` a checkpoint whose bytes match the manifest; CheckpointError when they do not.

    A checkpoint the manifest does not list is loaded unchecked (an older vidrec's, or copied in).
    """
    if manifest is not None and manifest.verify(path) is False:
        raise CheckpointError(f"{path}: checksum mismatch with {manifest.path} (the file was changed or damaged "
                              f"after it was written)")
    return safe_load(path)


def quarantine(path: str, manifest: Optional[Manifest] = None) -> str:
    """Rename a corrupt checkpoint to ``<name>.corrupt`` (kept for inspection, never matched again)."""
    dst = path + ".corrupt"
    try:
        os.replace(path, dst)
    except OSError as e:
        logger.warning("could not rename corrupt checkpoint %s: %s", path, e)
        dst = path
    if manifest is not None:
        manifest.drop(os.path.basename(path))
    return dst


def move_aside(folder: str, names: Iterable[str], label: str, manifest: Optional[Manifest] = None) -> Optional[str]:
    """Move checkpoints out of use into ``folder/<label>-<UTC time>/`` (not deleted); -> that folder."""
    names = [n for n in names if os.path.exists(os.path.join(folder, n))]
    if not names:
        return None
    dest = os.path.join(folder, f"{label}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    base, k = dest, 1
    while os.path.exists(dest):
        k += 1
        dest = f"{base}-{k}"
    os.makedirs(dest)
    for n in names:
        os.replace(os.path.join(folder, n), os.path.join(dest, n))
        if manifest is not None:
            manifest.drop(n)
    return dest


def prune(folder: str, keep_last: int, manifest: Optional[Manifest] = None, protect: Iterable[str] = ()) -> List[str]:
    """Delete old step checkpoints: only ones the manifest lists, keeping the newest ``keep_last`` (by the
    position recorded when they were written) and every name in ``protect``; -> the names deleted.

    Files the manifest does not list (copied in, an older vidrec's, an interrupted save) are never
    deleted and never count as kept; a listed file whose size no longer matches is renamed
    ``*.corrupt`` instead of counting as a good one. best.pt is separate and kept. Without a
    manifest nothing is deleted: name order alone never decides. The caller saves the manifest.
    """
    if keep_last <= 0 or manifest is None:
        return []
    listed = []
    for name, entry in list(manifest.files.items()):
        if position(name) is None:
            continue
        path = os.path.join(folder, name)
        try:
            size = os.path.getsize(path)
        except OSError:
            manifest.drop(name)  # gone: nothing to keep track of
            continue
        if size != entry.get("bytes"):
            logger.warning("checkpoint %s no longer has the size it was written with: renamed %s", path,
                           quarantine(path, manifest))
            continue
        listed.append(((int(entry.get("epoch", 0)), int(entry.get("iter", 0))), name))
    listed.sort()
    keep = {n for _, n in listed[-keep_last:]} | set(protect)
    removed = []
    for _, name in listed:
        if name in keep:
            continue
        try:
            os.unlink(os.path.join(folder, name))
        except OSError as e:
            logger.warning("could not remove old checkpoint %s: %s", os.path.join(folder, name), e)
            continue
        manifest.drop(name)
        removed.append(name)
    return removed


def export_safetensors(src: "str | torch.nn.Module", dst: str) -> str:
    """Write plain model weights (no optimizer, no pickle) as safetensors."""
    from safetensors.torch import save as st_save

    if isinstance(src, torch.nn.Module):
        sd = src.state_dict()
    else:
        sd = read_state_dict(src)
    sd = {k[7:] if k.startswith("module.") else k: v.detach().cpu().contiguous() for k, v in sd.items()}
    atomic_write_bytes(dst, st_save(sd))
    return dst


def latest_loadable(folder: str, manifest: Optional[Manifest] = None) -> Optional[tuple]:
    """(path, state) of the newest step checkpoint that loads (and, when ``manifest`` lists it, matches
    its checksum); the others are skipped with a warning. See :func:`find_resume` for the full rule."""
    found = find_resume(folder, manifest if manifest is not None else Manifest(folder, read=False), best=False)
    return (found["path"], found["state"]) if found["path"] else None


def find_resume(folder: str, manifest: Manifest, best: bool = True, rename_corrupt: bool = False) -> Dict:
    """The checkpoint to resume from: {"path", "state", "verified", "corrupt": [paths], "ignored": [names]}.

    Order: step checkpoints the manifest lists, newest first, whose bytes match it; then best.pt
    (when ``best``) likewise; only when none is listed and good, unlisted ones (written by an older
    vidrec or copied in: loadable, integrity unknown), newest first, then an unlisted best.pt. A
    listed checkpoint that does not match or does not load is reported in "corrupt" (renamed
    ``*.corrupt`` when ``rename_corrupt``) with a warning naming it. Unsafe pickles raise.
    """
    out = {"path": None, "state": None, "verified": False, "corrupt": [], "ignored": []}
    steps = list_checkpoints(folder)
    best_path = os.path.join(folder, BEST_NAME)
    extra = [best_path] if best and os.path.isfile(best_path) else []
    listed = [p for p in reversed(steps) if manifest.get(os.path.basename(p))]
    listed += [p for p in extra if manifest.get(BEST_NAME)]
    unlisted = [p for p in reversed(steps) if not manifest.get(os.path.basename(p))]
    unlisted += [p for p in extra if not manifest.get(BEST_NAME)]

    def _try(path, verified):
        try:
            state = load_verified(path, manifest)
        except UnsafeCheckpointError:
            raise
        except CheckpointError as e:
            if verified:
                dst = quarantine(path, manifest) if rename_corrupt else path
                logger.warning("corrupt checkpoint not used: %s%s; trying the previous one", e,
                               f" (renamed {os.path.basename(dst)})" if dst != path else "")
                out["corrupt"].append(path)
            else:
                logger.warning("skipping unreadable checkpoint: %s", e)
                out["corrupt"].append(path)
            return False
        out.update(path=path, state=state, verified=verified)
        return True

    for path in listed:
        if _try(path, True):
            break
    else:
        for path in unlisted:
            if _try(path, False):
                break
    chosen = out["path"]
    if chosen is not None and out["verified"]:
        pos = position(os.path.basename(chosen))
        newer = [os.path.basename(p) for p in unlisted if p not in out["corrupt"] and p != best_path
                 and pos is not None and position(os.path.basename(p)) > pos]
        out["ignored"] = sorted(newer)
    return out
