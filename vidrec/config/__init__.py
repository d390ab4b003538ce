"""Configuration: defaults, YAML files and command-line overrides."""
from .defaults import get_cfg
from .loader import CONFIG_DIR, ConfigError, load_config, resolve_config_path

__all__ = ["get_cfg", "load_config", "resolve_config_path", "ConfigError", "CONFIG_DIR"]
