"""What the user watches: a tqdm bar on a terminal, periodic log lines otherwise;
a JSON-lines metrics log and TensorBoard scalars (when tensorboard is installed)."""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Dict, Optional

from ..utils.io import atomic_write_text

logger = logging.getLogger("vidrec")


def setup_logging(output_dir: Optional[str], rank: int = 0) -> None:
    """INFO on the main rank to stdout and OUTPUT_DIR/log.txt; warnings only on other ranks."""
    root = logging.getLogger("vidrec")
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    root.propagate = False
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    fmt = logging.Formatter(f"[%(asctime)s{'' if rank == 0 else f' rank{rank}'}] %(message)s", "%H:%M:%S")
    sh = logging.StreamHandler(sys.stdout)
    sh.setFormatter(fmt)
    root.addHandler(sh)
    if output_dir and rank == 0:
        os.makedirs(output_dir, exist_ok=True)
        fh = logging.FileHandler(os.path.join(output_dir, "log.txt"))
        fh.setFormatter(fmt)
        root.addHandler(fh)


def _fmt_time(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Progress over ``total`` steps: tqdm when stdout is a TTY, else a line every ``log_period`` steps.

    Shows ETA, clips/s and whatever ``update(**postfix)`` passes (loss, LR).
    """

    def __init__(self, total: int, desc: str, initial: int = 0, log_period: int = 10, enabled: bool = True):
        self.total, self.desc, self.n = total, desc, initial
        self.log_period = max(1, log_period)
        self.enabled = enabled
        self.start_n = initial
        self.t0 = time.time()
        self.clips = 0
        self.bar = None
        if enabled and sys.stdout.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=True)

    def update(self, clips: int = 0, **postfix) -> None:
        self.n += 1
        self.clips += clips
        if not self.enabled:
            return
        rate = self.clips / max(time.time() - self.t0, 1e-9)
        fields = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in postfix.items()}
        if self.bar is not None:
            fields["clips/s"] = f"{rate:.1f}"
            self.bar.set_postfix(fields, refresh=False)
            self.bar.update(1)
        elif self.n % self.log_period == 0 or self.n == self.total:
            done = self.n - self.start_n
            eta = (time.time() - self.t0) / max(done, 1) * (self.total - self.n)
            extra = " ".join(f"{k} {v}" for k, v in fields.items())
            logger.info("%s %d/%d | eta %s | %.1f clips/s%s", self.desc, self.n, self.total,
                        _fmt_time(eta), rate, " | " + extra if extra else "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class MetricsLog:
    """Append-only JSON lines (one record per event) plus optional TensorBoard scalars.

    Only the main rank writes; others get a disabled instance. ``lines`` counts
    the records in the file; checkpoints store it, so a resumed run first drops
    the records of the steps it is about to redo (:meth:`rewind`) and the log
    reads as if the run had never stopped.
    """

    def __init__(self, output_dir: str, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.output_dir = output_dir
        self.path = os.path.join(output_dir, "metrics.jsonl")
        self.lines = 0
        if enabled and os.path.isfile(self.path):
            with open(self.path) as f:
                self.lines = sum(1 for _ in f)
        self.tb = None
        if enabled and tensorboard:
            self._open_tensorboard()

    def _open_tensorboard(self, purge_step: Optional[int] = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(os.path.join(self.output_dir, "tensorboard"), purge_step=purge_step)
        except Exception:  # noqa: BLE001 - tensorboard is optional
            logger.info("tensorboard is not installed: TensorBoard logging skipped (metrics.jsonl has everything)")

    def rewind(self, lines: int, step: int) -> None:
        """Keep the first ``lines`` records (and TensorBoard events up to ``step``): what a checkpoint saw."""
        if not self.enabled or lines >= self.lines:
            return
        with open(self.path) as f:
            kept = [line for _, line in zip(range(lines), f)]
        atomic_write_text(self.path, "".join(kept))
        logger.info("metrics.jsonl: dropped %d records written after the checkpoint (steps redone now)",
                    self.lines - lines)
        self.lines = lines
        if self.tb is not None:
            self.tb.close()
            self._open_tensorboard(purge_step=step + 1)

    def log(self, record: Dict, step: Optional[int] = None) -> None:
        if not self.enabled:
            return
        record = dict(record, time=round(time.time(), 3))
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.lines += 1
        if self.tb is not None and step is not None:
            kind = record.get("type", "scalar")
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("epoch", "iter", "step", "time"):
                    self.tb.add_scalar(f"{kind}/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
