"""One registry for every network: ``create(name, **kwargs)``, timm style."""
from __future__ import annotations

import difflib
import fnmatch
import inspect
from typing import Callable, Dict, List

from torch import nn

_MODELS: Dict[str, Callable[..., nn.Module]] = {}


def keyword_signature(cls, fixed) -> inspect.Signature:
    """The keyword options of ``cls(...)`` that a builder leaves open (``fixed`` are set by the builder),
    so that ``create`` can name a misspelt option instead of failing deep inside."""
    sig = inspect.signature(cls.__init__)
    return sig.replace(parameters=[p for n, p in sig.parameters.items() if n != "self" and n not in fixed])


def register_model(name: str, builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    if name in _MODELS:
        raise KeyError(f"model '{name}' is registered twice")
    _MODELS[name] = builder
    return builder


def list_models(pattern: str = "*") -> List[str]:
    """Registered names matching a shell-style pattern, e.g. ``list_models('iresnet*')``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create(name: str, **kwargs) -> nn.Module:
    """Build a registered network; an unknown name fails listing the available ones."""
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown model '{name}'.{hint} Available: {', '.join(list_models())}"
        )
    build = _MODELS[name]
    try:  # a misspelt option is the caller's error; a TypeError inside the build is a bug, with its traceback
        inspect.signature(build).bind(**kwargs)
    except TypeError as e:
        raise TypeError(f"cannot build '{name}' with {sorted(kwargs)}: {e}") from None
    return build(**kwargs)
