"""Video lists: generic ``path label`` files, folder-per-class trees, and the
official Kinetics-400 CSV / Something-Something-v2 JSON annotations.

Readers return paths relative to the data root (resolved, and checked not to
escape it, by :func:`resolve_under`) with their labels: ``(paths, labels)`` for
``path label`` lists, ``(paths, labels, class_names)`` for folder trees and
``(paths, labels, missing)`` for the official Kinetics CSV / SSv2 JSON, whose
videos may be missing on disk.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import logging
import os
import stat
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

logger = logging.getLogger("vidrec.data")

from ..shipped import LISTS_DIR

VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".gif")
Rows = Tuple[List[str], List[int]]


class ListError(ValueError):
    """A list/annotation file that cannot be used (missing, empty, malformed)."""


def find_list(name: str, key: str = "") -> Path:
    """A list or class-map file as given (relative to the working directory), else the shipped one
    (``data_lists/kinetics400_classes.txt`` and ``kinetics400_classes.txt`` both find the shipped map).

    A missing list is a one-line :class:`ListError` that says how to build it.
    """
    if not name:
        raise ListError("no list file configured for this split (DATA.TRAIN_LIST / VAL_LIST / TEST_LIST)")
    given = Path(name).expanduser()
    shipped = [LISTS_DIR / name] if not given.is_absolute() else []
    if given.parts[:1] == ("data_lists",):
        shipped.append(LISTS_DIR.joinpath(*given.parts[1:]))
    for p in [given, *shipped]:
        if p.is_file():
            return p
    if key == "MODEL.CLASS_NAMES":
        raise ListError(f"MODEL.CLASS_NAMES file not found: {name} (a text file with one class name per line)")
    what = f"{key} " if key else ""
    raise ListError(f"{what}list file not found: {name}. Build it from the official annotations and your "
                    f"video folder: vidrec build-lists kinetics|ssv2 --annotations FILE --root VIDEO_DIR --out {name}"
                    + (f", or point {key} (and DATA.PATH_TO_DATA_DIR) at an existing list" if key else ""))


@functools.lru_cache(maxsize=4096)
def _real_dir(path: str) -> str:
    return os.path.realpath(path)


def _realpath(p: str) -> str:
    """``os.path.realpath`` of an absolute, normalised path; folders cached (a list shares few of them)."""
    try:
        link = stat.S_ISLNK(os.lstat(p).st_mode)
    except OSError:
        link = False  # missing: resolve what exists above it
    return os.path.realpath(p) if link else os.path.join(_real_dir(os.path.dirname(p)), os.path.basename(p))


def _inside(base: str, p: str) -> bool:
    return os.path.commonpath([base, p]) == base


def resolve_under(root: str, rel: str, allow_outside: bool = False,
                  opt_out: str = "set DATA.ALLOW_OUTSIDE_ROOT True") -> str:
    """``root/rel`` (absolute, as spelled, symlinks kept); refuses entries that escape ``root`` unless
    allowed: absolute paths, "..", and symlinks anywhere on the way that lead outside the root
    (both sides resolved with realpath, so a root that is itself a symlink is fine)."""
    base = os.path.abspath(root or ".")
    p = os.path.abspath(os.path.join(base, os.path.expanduser(rel)))
    if allow_outside:
        return p
    if not _inside(base, p):
        raise ListError(f"list entry {rel!r} points outside the data root {base}; {opt_out} to allow it")
    real = _realpath(p)
    if not _inside(_real_dir(base), real):
        raise ListError(f"list entry {rel!r} points outside the data root {base} (through a symlink, to {real}); "
                        f"{opt_out} to allow it")
    return p


def read_class_names(path) -> List[str]:
    """One class name per line; index = line number."""
    names = [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines()]
    return [n for n in names if n]


def _int(s: str) -> Optional[int]:
    try:
        return int(s.strip())
    except ValueError:
        return None


def read_path_label_list(path) -> Rows:
    """``path label`` lines, space or comma separated (paths may contain spaces),
    optional header row, ``#`` comments and blank lines skipped."""
    text = Path(path).read_text(encoding="utf-8-sig")
    paths, labels, header_checked = [], [], False
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if "," in s:
            row = next(csv.reader(io.StringIO(s)))
            fields = [",".join(row[:-1]).strip(), row[-1]] if len(row) >= 2 else row
        else:
            fields = s.rsplit(None, 1)
        lab = _int(fields[-1]) if len(fields) == 2 else None
        if lab is None:
            if not header_checked:
                header_checked = True
                continue  # header row
            raise ListError(f"{path}:{n}: expected 'path label' with an integer label, got {line!r}")
        header_checked = True
        paths.append(fields[0].strip().strip('"'))
        labels.append(lab)
    return paths, labels


def write_path_label_list(path, paths: Sequence[str], labels: Sequence[int]) -> None:
    """CSV with a ``path,label`` header, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "label"])
    w.writerows(zip(paths, labels))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)


def scan_folder(root) -> Tuple[List[str], List[int], List[str]]:
    """Folder-per-class tree -> (rel paths, labels, class names sorted alphabetically)."""
    root = Path(root)
    if not root.is_dir():
        raise ListError(f"data folder not found: {root}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    paths, labels = [], []
    for i, c in enumerate(classes):
        for dp, _, files in sorted(os.walk(root / c)):
            for f in sorted(files):
                if f.lower().endswith(VIDEO_EXTS):
                    paths.append(os.path.relpath(os.path.join(dp, f), root))
                    labels.append(i)
    return paths, labels, classes


def _index_files(root) -> Dict[str, List[str]]:
    """file name -> relative paths of that name under root (one walk, no per-row stat)."""
    idx: Dict[str, List[str]] = {}
    for dp, _, files in os.walk(root):
        for f in files:
            idx.setdefault(f, []).append(os.path.relpath(os.path.join(dp, f), root))
    return idx


def is_kinetics_csv(path) -> bool:
    with open(path, encoding="utf-8-sig") as f:
        return "youtube_id" in f.readline()


def read_kinetics_csv(path, root, class_names: Optional[Sequence[str]] = None) -> Tuple[List[str], List[int], List[str]]:
    """Official K400 CSV (``label,youtube_id,time_start,time_end,split``) -> (rel paths, labels, missing).

    Clips are found on disk as ``{id}_{start:06d}_{end:06d}.mp4`` (any video
    extension), flat or under a class folder (name as is or with spaces -> ``_``).
    Rows whose file is missing are skipped and returned in ``missing``.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ListError(f"{path}: no rows")
    if "youtube_id" not in rows[0]:
        raise ListError(f"{path}: not a Kinetics CSV (needs label,youtube_id,time_start,time_end columns)")
    names = list(class_names) if class_names else sorted({r["label"] for r in rows})
    lookup = {n: i for i, n in enumerate(names)}
    lookup.update({n.replace(" ", "_"): i for i, n in enumerate(names)})
    files = _index_files(root)
    stems = {}
    for name, rels in files.items():
        stem, ext = os.path.splitext(name)
        if ext.lower() in VIDEO_EXTS:
            stems.setdefault(stem, []).extend(rels)
    paths, labels, missing = [], [], []
    for n, r in enumerate(rows, 2):
        cls = r["label"].strip()
        if cls not in lookup:
            raise ListError(f"{path}:{n}: class {cls!r} is not in the class list")
        stem = f"{r['youtube_id']}_{int(float(r['time_start'])):06d}_{int(float(r['time_end'])):06d}"
        cands = stems.get(stem, [])
        pref = [c for c in cands if Path(c).parent.name in (cls, cls.replace(" ", "_"), "")]
        if not cands:
            missing.append(stem)
            continue
        paths.append((pref or cands)[0])
        labels.append(lookup[cls])
    return paths, labels, missing


def ssv2_template_to_class(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def read_ssv2_json(path, labels_file, root=None) -> Tuple[List[str], List[int], List[str]]:
    """Official SSv2 train/validation JSON + labels JSON -> (rel paths ``{id}.webm``, labels, missing)."""
    with open(labels_file, encoding="utf-8") as f:
        lookup = {k: int(v) for k, v in json.load(f).items()}
    with open(path, encoding="utf-8") as f:
        items = json.load(f)
    if not items:
        raise ListError(f"{path}: no entries")
    paths, labels, missing = [], [], []
    for it in items:
        if "template" not in it:
            raise ListError(f"{path}: entry {it.get('id')} has no template (test split JSONs carry no labels)")
        cls = ssv2_template_to_class(it["template"])
        if cls not in lookup:
            raise ListError(f"{path}: template {cls!r} (id {it['id']}) is not in {labels_file}")
        rel = f"{it['id']}.webm"
        if root is not None and not os.path.exists(os.path.join(root, rel)):
            missing.append(rel)
            continue
        paths.append(rel)
        labels.append(lookup[cls])
    return paths, labels, missing


def ssv2_class_names(labels_file) -> List[str]:
    """Class names in id order from the SSv2 labels JSON."""
    with open(labels_file, encoding="utf-8") as f:
        d = json.load(f)
    names = [""] * (max(int(v) for v in d.values()) + 1)
    for k, v in d.items():
        names[int(v)] = k
    return names


def build_list(dataset: str, annotations, root, out, labels_file: str = "", classes_file: str = "",
               missing_file: Optional[str] = None) -> Dict:
    """Official annotations + video root -> ``out`` (``path,label`` CSV) and a missing-videos file."""
    if dataset == "kinetics":
        names = read_class_names(classes_file or LISTS_DIR / "kinetics400_classes.txt")
        paths, labels, missing = read_kinetics_csv(annotations, root, names)
    elif dataset == "ssv2":
        if not labels_file:
            raise ListError("SSv2 needs the labels JSON (--labels something-something-v2-labels.json)")
        paths, labels, missing = read_ssv2_json(annotations, labels_file, root)
    else:
        raise ListError(f"unknown dataset {dataset!r} (kinetics or ssv2)")
    write_path_label_list(out, paths, labels)
    res = {"out": str(out), "found": len(paths), "missing": len(missing), "missing_file": ""}
    if missing:
        res["missing_file"] = missing_file or str(out) + ".missing.txt"
        Path(res["missing_file"]).write_text("".join(m + "\n" for m in missing))
        logger.warning("%d of %d annotated videos are missing under %s", len(missing), len(missing) + len(paths), root)
    return res
