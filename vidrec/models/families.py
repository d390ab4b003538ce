"""ResNeXt3D and the ResGroup3D families: ResNet3D with reshaped bottlenecks.

All are ``ResNet3D`` (same stem, stage strides, head, wirings); only the
bottleneck's 3x3x3 conv changes. planes = 64, 128, 256, 512 per stage.

| family       | 3x3x3 width        | groups per stage | block output | seed                |
|--------------|--------------------|------------------|--------------|---------------------|
| resnext3d    | 2 x planes (32x4d) | 32               | 4 x planes   | Xie et al. 2017     |
| resgroup3d   | 4 x planes         | 8, 16, 32, 64    | 2 x planes   | Duta et al. 2020, 3.3 |
| resgroupfix3d| 4 x planes         | 64               | 2 x planes   | Duta et al. 2020, 3.3 |

ResGroup puts the grouped conv on the widest channels (32 channels per group
in ResGroup, 64 groups everywhere in ResGroupFix) and halves them again at the
output, so its embedding is 1024-d. The ``i`` prefix (iresnext3d,
iresgroup3d, iresgroupfix3d) selects the iResNet wiring: start/middle/end
blocks, no stem pool, improved projection. Module names follow torchvision's
ResNeXt and the authors' ``resgroup.py`` / ``iresgroup.py``, so their 2D
checkpoints inflate key for key (``vidrec.models.inflate``).
"""
from __future__ import annotations

from .registry import keyword_signature, register_model
from .resnet3d import DEPTHS, ResNet3D

# name -> (bottleneck reshaping, depths)
SPECS = {
    "resnext3d": (dict(groups=32, width_ratio=2), (50, 101)),
    "resgroup3d": (dict(groups=(8, 16, 32, 64), width_ratio=4, expansion=2), (50, 101, 152)),
    "resgroupfix3d": (dict(groups=64, width_ratio=4, expansion=2), (50, 101, 152)),
}


def _register(name: str, wiring: str, shape: dict, depth: int) -> None:
    layers = DEPTHS[depth][1]

    def build(**kwargs) -> ResNet3D:
        return ResNet3D(layers, block="bottleneck", wiring=wiring, **shape, **kwargs)

    build.__doc__ = f"{name}_{depth}: {wiring} wiring, blocks {layers}, {shape}."
    build.__signature__ = keyword_signature(ResNet3D, ("layers", "block", "wiring", *shape))
    register_model(f"{name}_{depth}", build)


for _family, (_shape, _depths) in SPECS.items():
    for _depth in _depths:
        _register(_family, "baseline", _shape, _depth)
        _register("i" + _family, "iresnet", _shape, _depth)
