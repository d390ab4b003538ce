"""Training and multi-view evaluation engine.

Entry points (imported lazily so ``import vidrec.engine`` stays cheap):
``train(cfg)``, ``test(cfg)`` and ``run_demo(argv)``.
"""


def train(cfg):
    from .trainer import train as _train

    return _train(cfg)


def test(cfg):
    from .evaluator import test as _test

    return _test(cfg)


def run_demo(argv=None):
    from .demo import run_demo as _run_demo

    return _run_demo(argv)


__all__ = ["train", "test", "run_demo"]
