"""Backbones: ``create``, ``list_models`` and ``build_model(cfg)``."""
from . import resnet3d  # noqa: F401  (registers the ResNet3D families)
from .build import build_model
from .registry import create, list_models, register_model
from .resnet3d import ResNet3D

__all__ = ["create", "list_models", "register_model", "build_model", "ResNet3D"]
