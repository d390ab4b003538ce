"""One-line video errors, and native decoder chatter kept off the console.

Decoder libraries report failures in their own dialects: ``[Errno 1094995529]``,
C++ source paths, timestamps, the file name again. :func:`reason_of` reduces an
exception to its reason, and :class:`VideoError` prints ``path: reason`` once.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile

logger = logging.getLogger("vidrec.data")

_NOISE = [
    re.compile(r"\[\d\d:\d\d:\d\d\]"),                        # dmlc log timestamps
    re.compile(r"(/[\w.\-]+)+\.(cc|cpp|h|c):\d+:?"),          # C++ source locations
    re.compile(r"\[Errno -?\d+\]"),                           # FFmpeg error numbers
    re.compile(r":\s*'(avcodec_\w+|av_\w+)\(\)'"),            # the FFmpeg call that failed
    re.compile(r"\(-?\d+ vs\. 0\)"),                          # decord's CHECK operands
]


class VideoError(Exception):
    """A video that cannot be opened or decoded; one line naming the file and the reason."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), clean(str(reason), str(path))[:300]
        super().__init__(f"{self.path}: {self.reason}")


def clean(text: str, path: str = "") -> str:
    """``text`` without error numbers, source paths, timestamps or the file name."""
    if path:
        text = text.replace(f"'{path}'", "").replace(path, "")
    for pattern in _NOISE:
        text = pattern.sub(" ", text)
    if "Check failed:" in text:  # decord: keep what failed, not the assertion plumbing
        text = text.split("Check failed:")[-1]
        text = re.sub(r"^.*?(>=|==|!=|<=)\s*-?\w+\s*", "", text, count=1) or text
    text = re.sub(r"\s+([:;,.])", r"\1", " ".join(text.split()))
    return text.strip(" :;,") or "unknown decoder error"


def reason_of(e: BaseException, path: str = "") -> str:
    """A decoder exception as one clean line, its type first (``InvalidDataError: ...``)."""
    return f"{type(e).__name__}: {clean(str(e), path)}"


class _NativeStderr:
    """Route what C/C++ libraries write to file descriptor 2 into vidrec's debug log."""

    def __init__(self):
        self.sink = None

    @contextlib.contextmanager
    def captured(self):
        if self.sink is None:
            self.sink = tempfile.TemporaryFile(mode="w+b")
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all
            yield
            return
        try:
            os.dup2(self.sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            self.sink.seek(0)
            text = self.sink.read().decode("utf-8", "replace")
            self.sink.seek(0)
            self.sink.truncate()
            for line in text.splitlines():
                if line.strip():
                    logger.debug("native decoder: %s", line.strip())


native_stderr = _NativeStderr()
