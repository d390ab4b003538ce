"""Backbones: ``create``, ``list_models`` and ``build_model(cfg)``."""
from . import resnet3d  # noqa: F401  (registers the ResNet3D families)
from . import families  # noqa: F401  (ResNeXt3D, ResGroup3D and their iResNet wirings)
from . import seqconv  # noqa: F401  (SeqResNet3D / SeqResNeXt3D)
from .build import build_model
from .registry import create, list_models, register_model
from .resnet3d import ResNet3D
from .seqconv import SeqConv3d, SeqResNet3D

__all__ = ["create", "list_models", "register_model", "build_model", "ResNet3D",
           "SeqConv3d", "SeqResNet3D"]
