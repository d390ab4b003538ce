"""One function over many files in worker processes: a crash or a hang in a native decoder or
encoder takes down a worker, not the caller. Shared by ``check-videos`` and ``prepare``."""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Callable, List, Sequence

from .cpus import available_cores


def default_workers(n_items: int) -> int:
    """One process per core this process may use (affinity, cgroup quota), no more than there are items."""
    return max(1, min(n_items, available_cores()))


def codec_threads(workers: int) -> int:
    """Decoder/encoder threads for each of ``workers`` processes: FFmpeg's choice (one per core) when
    alone, else one each (not cores x cores threads)."""
    return 0 if workers == 1 else 1


def process_map(fn: Callable, items: Sequence, workers: int = 0, progress: bool = True, desc: str = "",
                unit: str = "video") -> List:
    """``[fn(x) for x in items]`` (input order) over ``workers`` processes (0: one per CPU), with a
    progress bar. ``workers`` 1 runs here, without a pool (debuggers and monkeypatches work)."""
    items = list(items)
    workers = workers or default_workers(len(items))
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    it = pool.map(fn, items, chunksize=1) if pool is not None else map(fn, items)
    try:
        if progress:
            from tqdm import tqdm
            it = tqdm(it, total=len(items), desc=desc, unit=unit)
        return list(it)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
