"""clipstream: an actor-based real-time backend for short-video platforms."""

__all__ = ["__version__"]

__version__ = "0.1.0"
