import json
import logging
import sys

import pytest

from vidrec.engine.progress import MetricsLog, Progress


@pytest.fixture(autouse=True)
def _propagate(monkeypatch):
    """setup_logging() (run by earlier tests) stops propagation; caplog listens at the root."""
    monkeypatch.setattr(logging.getLogger("vidrec"), "propagate", True)


def test_metrics_log_without_tensorboard(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with caplog.at_level(logging.INFO, logger="vidrec"):
        log = MetricsLog(str(tmp_path))
    assert log.tb is None
    assert any("TensorBoard logging skipped" in r.getMessage() for r in caplog.records)
    log.log({"type": "train_iter", "loss": 1.5, "step": 3}, step=3)
    log.close()
    rec = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert rec["loss"] == 1.5 and rec["type"] == "train_iter"


def test_progress_prints_periodic_lines_when_not_a_tty(caplog):
    with caplog.at_level(logging.INFO, logger="vidrec"):
        p = Progress(total=6, desc="epoch 1/1", log_period=3)
        for _ in range(6):
            p.update(8, loss=0.5, lr=0.1)
        p.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1/1")]
    assert len(lines) == 2 and "eta" in lines[0] and "clips/s" in lines[0] and "loss 0.5" in lines[0]
