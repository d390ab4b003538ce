"""Counted nouns for messages: ``plural(1, "video")`` -> "1 video", ``plural(2, "video")`` -> "2 videos"."""
from __future__ import annotations


def plural(n, word: str, many: str = "") -> str:
    """``n`` and ``word``, with ``many`` (default ``word + "s"``) unless ``n`` is exactly 1."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
