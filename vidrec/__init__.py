"""vidrec: video action recognition with inflated 3D residual networks."""
from .version import __version__  # noqa: F401


def __getattr__(name):  # vidrec.Predictor, imported on first use so `import vidrec` stays light
    if name == "Predictor":
        from .inference.predictor import Predictor
        return Predictor
    raise AttributeError(f"module 'vidrec' has no attribute {name!r}")
