"""Command-line inputs (videos, folders, list files) -> video paths, shared by the video tools:
``predict`` / ``extract`` (:func:`expand_inputs`) and ``check-videos`` (``video_check.collect_paths``)."""
from __future__ import annotations

import os
from typing import Iterable, List

from .lists import VIDEO_EXTS

LIST_EXTS = (".txt", ".csv", ".lst", ".list")


def is_video_file(path) -> bool:
    """A video by its name (one of :data:`vidrec.data.lists.VIDEO_EXTS`), whether or not it exists."""
    return str(path).lower().endswith(VIDEO_EXTS)


def videos_under(folder) -> List[str]:
    """Video files under ``folder``, searched recursively, in sorted order."""
    out: List[str] = []
    for dp, dirs, files in os.walk(folder):
        dirs.sort()
        out += [os.path.join(dp, f) for f in sorted(files) if is_video_file(f)]
    return out


def unique(paths: Iterable[str]) -> List[str]:
    """``paths`` in order, duplicates dropped."""
    return list(dict.fromkeys(paths))


def read_video_list(path: str) -> List[str]:
    """One video per line (first comma/space separated field; '#' comments and a 'path' header skipped).
    Relative entries are resolved against the current folder, else the list's folder."""
    base = os.path.dirname(os.path.abspath(path))
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            first = line.split(",")[0].strip() if "," in line else line.split()[0]
            if first.lower() in ("path", "video", "filename"):
                continue
            if not os.path.isabs(first) and not os.path.exists(first) and os.path.exists(os.path.join(base, first)):
                first = os.path.join(base, first)
            out.append(first)
    return out


def expand_inputs(inputs: Iterable[str]) -> List[str]:
    """Videos as given (missing ones kept, so they are reported), folders searched recursively
    for video files, ``.txt``/``.csv`` lists read line by line. Order kept, duplicates dropped."""
    out: List[str] = []
    for inp in inputs:
        inp = os.path.expanduser(str(inp))
        if os.path.isdir(inp):
            out += videos_under(inp)
        elif inp.lower().endswith(LIST_EXTS) and os.path.isfile(inp):
            out += read_video_list(inp)
        else:
            out.append(inp)
    return unique(out)
