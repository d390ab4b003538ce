"""Training and multi-view evaluation engine.

Entry points (imported lazily so ``import vidrec.engine`` stays cheap):
``train(cfg)`` and ``test(cfg)``.
"""


def train(cfg):
    from .trainer import train as _train

    return _train(cfg)


def test(cfg):
    from .evaluator import test as _test

    return _test(cfg)


__all__ = ["train", "test"]
