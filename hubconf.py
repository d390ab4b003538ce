"""torch.hub entry points: every registered vidrec model, plus trained model folders.

    torch.hub.load("path/to/vidrec", "iresnet3d_50", source="local", num_classes=400)
    torch.hub.load("path/to/vidrec", "iresnet3d_50", source="local", weights="model_final.safetensors")
    torch.hub.load("path/to/vidrec", "from_pretrained", "runs/k400/model", source="local")
"""
dependencies = ["torch", "safetensors"]

from vidrec.models import create as _create, list_models as _list_models  # noqa: E402
from vidrec.models.pretrained import from_pretrained  # noqa: E402,F401
from vidrec.models.weights import load_weights as _load_weights  # noqa: E402


def _entry(name):
    def build(weights=None, **kwargs):
        model = _create(name, **kwargs)
        if weights:
            _load_weights(model, weights, strict=True)
        return model
    build.__name__ = name
    build.__doc__ = (f"vidrec {name} (keyword arguments as vidrec.models.create: num_classes, dropout, "
                     f"width_mult, temporal); weights: a weight file loaded strictly (safetensors or a checkpoint).")
    return build


for _name in _list_models():
    globals()[_name] = _entry(_name)
