"""Typed, environment-driven settings of every clipstream subsystem."""

from clipstream.config.settings import (
    ENV_PREFIX,
    Settings,
    SettingsError,
    env_variables,
    get_settings,
    load_settings,
)

__all__ = ["ENV_PREFIX", "Settings", "SettingsError", "env_variables", "get_settings", "load_settings"]
