"""Build the configured network (and inflate 2D weights into it if asked)."""
from __future__ import annotations

import logging

from torch import nn

from .registry import create

logger = logging.getLogger(__name__)


def build_model(cfg) -> nn.Module:
    """The network named by ``cfg.MODEL.ARCH``, with the config's head and widths."""
    model = create(
        cfg.MODEL.ARCH,
        num_classes=cfg.MODEL.NUM_CLASSES,
        dropout=cfg.MODEL.DROPOUT_RATE,
        width_mult=cfg.MODEL.WIDTH_MULT,
        temporal=not cfg.MODEL.TWO_D,
    )
    if cfg.MODEL.INFLATE_FROM:
        from .inflate import inflate_from_file

        report = inflate_from_file(model, cfg.MODEL.INFLATE_FROM, keep_classifier=False)
        logger.info("inflated %s: %s", cfg.MODEL.INFLATE_FROM, report.summary())
    return model
