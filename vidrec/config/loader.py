"""Load a config: defaults <- YAML file <- ``KEY VALUE`` overrides.

Errors name the offending file or key (with close matches) instead of
surfacing a bare yacs traceback. YAML is parsed with ``yaml.safe_load`` only.
"""
from __future__ import annotations

import ast
import difflib
from pathlib import Path
from typing import Any, Iterable, Optional

import yaml
from fvcore.common.config import CfgNode

from ..shipped import CONFIG_DIR, shipped_configs
from .defaults import COUNT_OR_AUTO, RANGES, get_cfg

BASE_KEY = "_BASE_"


class ConfigError(ValueError):
    """A config file or override that cannot be applied."""


def resolve_config_path(name: str | Path) -> Path:
    """The path as given if it exists, else the shipped config of that name (``.yaml`` optional)."""
    path = Path(name)
    if path.is_file():
        return path
    names = [path, Path(path.name)] + ([path.with_name(path.name + ".yaml")] if not path.suffix else [])
    for candidate in (CONFIG_DIR / n for n in names):
        if candidate.is_file():
            return candidate
    available = shipped_configs()
    close = difflib.get_close_matches(path.name, available, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    listing = " 'vidrec configs' lists the shipped ones." if available else ""
    raise ConfigError(f"config file not found: '{name}'.{hint}{listing}")


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    """Safe-load a YAML file and resolve ``_BASE_`` inheritance (relative to the file)."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: _BASE_ inheritance loops back on itself")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    base_path = Path(base) if Path(base).is_absolute() else path.parent / base
    if not base_path.is_file():
        base_path = resolve_config_path(base)
    merged = _read_yaml(base_path, seen + (path.resolve(),))
    _deep_update(merged, data)
    return merged


def _deep_update(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_update(dst[k], v)
        else:
            dst[k] = v


def _unknown_key(key: str, node: CfgNode, prefix: str, source: str) -> ConfigError:
    full = prefix + key
    options = [prefix + k for k in node.keys()]
    close = difflib.get_close_matches(full, options, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ConfigError(f"{source}: unknown config key '{full}'.{hint}")


def _coerce(value: Any, default: Any, key: str, source: str) -> Any:
    """Check ``value`` against the default's type, allowing the lossless conversions."""
    if key in COUNT_OR_AUTO:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{source}: config key '{key}' expects a whole number or auto, got {value!r}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return type(default)(value)
        if isinstance(value, str) and default and all(isinstance(d, str) for d in default):
            return type(default)([value])  # a list of names given as one name (DATA.DECODER pyav)
    elif default is None:
        return value
    raise ConfigError(
        f"{source}: config key '{key}' expects {type(default).__name__} "
        f"(default {default!r}), got {type(value).__name__} {value!r}"
    )


def merge_dict(cfg: CfgNode, data: dict, source: str, prefix: str = "") -> None:
    """Merge a nested dict into ``cfg`` with key and type checks."""
    for key, value in data.items():
        if key not in cfg:
            raise _unknown_key(str(key), cfg, prefix, source)
        default = cfg[key]
        if isinstance(default, CfgNode):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{prefix}{key}' is a section; expected a mapping, got {value!r}")
            merge_dict(default, value, source, prefix + key + ".")
        else:
            cfg[key] = _coerce(value, default, prefix + key, source)


def _parse_value(text: str) -> Any:
    """CLI values: Python/YAML literals when they parse, plain strings otherwise."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return parsed if isinstance(parsed, (bool, int, float, list)) else text


def merge_opts(cfg: CfgNode, opts: Iterable[str]) -> None:
    """Apply ``KEY VALUE`` pairs from the command line."""
    opts = list(opts)
    if len(opts) % 2:
        raise ConfigError(
            f"overrides must come in KEY VALUE pairs; got an odd number ({len(opts)}): {' '.join(opts)}"
        )
    for key, text in zip(opts[0::2], opts[1::2]):
        node, parts = cfg, key.split(".")
        for i, part in enumerate(parts[:-1]):
            if part not in node or not isinstance(node[part], CfgNode):
                raise _unknown_key(part, node, ".".join(parts[:i]) + ("." if i else ""), "command line")
            node = node[part]
        prefix = ".".join(parts[:-1]) + ("." if len(parts) > 1 else "")
        if parts[-1] not in node or isinstance(node[parts[-1]], CfgNode):
            raise _unknown_key(parts[-1], node, prefix, "command line")
        value = _parse_value(text)
        default = node[parts[-1]]
        if isinstance(default, str) and not isinstance(value, str):
            value = text  # e.g. OUTPUT_DIR 123 stays a string
        node[parts[-1]] = _coerce(value, default, key, "command line")


def check_ranges(cfg: CfgNode) -> None:
    """Every numeric key against the range the defaults declare for it (``defaults.RANGES``)."""
    for key, allowed in RANGES.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        message = allowed.check(key, node)
        if message:
            raise ConfigError(message)
    for key, allowed in COUNT_OR_AUTO.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        message = None if node == "auto" else allowed.check(key, node)
        if message:
            raise ConfigError(message + " (or auto)")


def validate(cfg: CfgNode) -> None:
    """Each numeric key's declared range, then the checks that single-key type checks cannot catch."""
    check_ranges(cfg)
    checks = [
        (len(cfg.DATA.TRAIN_JITTER_SCALES) == 2
         and cfg.DATA.TRAIN_JITTER_SCALES[0] <= cfg.DATA.TRAIN_JITTER_SCALES[1],
         "DATA.TRAIN_JITTER_SCALES must be [min, max]"),
        (len(cfg.DATA.MEAN) == 3 and len(cfg.DATA.STD) == 3, "DATA.MEAN and DATA.STD need 3 values"),
        (cfg.TRAIN.MIXED_PRECISION in ("fp32", "bf16", "fp16"),
         f"TRAIN.MIXED_PRECISION must be fp32, bf16 or fp16, got '{cfg.TRAIN.MIXED_PRECISION}'"),
        (cfg.DEVICE in ("auto", "cpu", "cuda"), f"DEVICE must be auto, cpu or cuda, got '{cfg.DEVICE}'"),
        (cfg.TEST.WEIGHTS in ("final", "best"), f"TEST.WEIGHTS must be final or best, got '{cfg.TEST.WEIGHTS}'"),
        (cfg.DATA.PARTIAL_VIDEO in ("keep", "fail"),
         f"DATA.PARTIAL_VIDEO must be keep or fail, got '{cfg.DATA.PARTIAL_VIDEO}'"),
        (cfg.MEMORY_FORMAT in ("auto", "channels_last", "contiguous"),
         f"MEMORY_FORMAT must be auto, channels_last or contiguous, got '{cfg.MEMORY_FORMAT}'"),
        (list(cfg.SOLVER.STEPS) == sorted(cfg.SOLVER.STEPS), "SOLVER.STEPS must be increasing"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def load_config(cfg_file: Optional[str | Path] = None, opts: Iterable[str] = ()) -> CfgNode:
    """Defaults, then the YAML file (if any), then the overrides; validated."""
    cfg = get_cfg()
    if cfg_file:
        path = resolve_config_path(cfg_file)
        merge_dict(cfg, _read_yaml(path), str(path))
    merge_opts(cfg, opts or ())
    validate(cfg)
    return cfg
