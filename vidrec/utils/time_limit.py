"""A time limit on a block of work, by SIGALRM: decoders and encoders return to Python after every
frame, so a file that decodes forever (or far too slowly) is cut off at its next frame.

The exception is a BaseException, so that the decoders' generic ``except Exception`` (which turns
library errors into a VideoError) lets it through to whoever set the limit. Outside the main thread,
and where there is no SIGALRM, there is no limit.
"""
from __future__ import annotations

import contextlib
import signal
import threading


class TimeLimitExceeded(BaseException):
    """The block ran past its limit."""


def _alarm(signum, frame):
    raise TimeLimitExceeded()


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`TimeLimitExceeded` in the block after ``seconds`` (0 or None: no limit)."""
    if not seconds or not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
