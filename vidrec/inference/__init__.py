"""Inference on user videos: sliding-window labels, clip features, model export.

``Predictor`` (vidrec.inference.predictor) is imported on first use so that
``import vidrec.inference`` stays light.
"""

__all__ = ["Predictor", "ClipStream", "expand_inputs"]


def __getattr__(name):
    if name == "Predictor":
        from .predictor import Predictor
        return Predictor
    if name == "ClipStream":
        from .stream import ClipStream
        return ClipStream
    if name == "expand_inputs":
        from .inputs import expand_inputs
        return expand_inputs
    raise AttributeError(f"module 'vidrec.inference' has no attribute {name!r}")
