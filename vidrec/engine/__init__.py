"""Training and multi-view evaluation engine.

Entry points (imported lazily so ``import vidrec.engine`` stays cheap):
``train(cfg)`` and ``evaluate_weights(cfg)`` (the multi-view test of trained weights).
"""


def train(cfg):
    from .trainer import train as _train

    return _train(cfg)


def evaluate_weights(cfg):
    from .evaluator import evaluate_weights as _evaluate_weights

    return _evaluate_weights(cfg)


__all__ = ["train", "evaluate_weights"]
