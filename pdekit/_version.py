"""The pdekit version, in a module of its own so that any subpackage can read it without importing
the package root (``pyproject.toml`` reads it from here too)."""

__version__ = "0.1.0"
