"""Turn command-line inputs (videos, folders, list files) into a list of video paths."""
from __future__ import annotations

import os
from typing import Iterable, List

from ..data.lists import VIDEO_EXTS

LIST_EXTS = (".txt", ".csv", ".lst", ".list")


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
            for dp, dirs, files in os.walk(inp):
                dirs.sort()
                out += [os.path.join(dp, f) for f in sorted(files) if f.lower().endswith(VIDEO_EXTS)]
        elif inp.lower().endswith(LIST_EXTS) and os.path.isfile(inp):
            out += read_video_list(inp)
        else:
            out.append(inp)
    seen, uniq = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq
