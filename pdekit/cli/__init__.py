"""pdekit's command line: ``pdekit generate|verify|info|train|evaluate`` and the demo.

``main`` is the console entry point (``pdekit``, ``python -m pdekit``, ``python -m pdekit.cli``);
:mod:`pdekit.cli.demo` is the main job (``make demo``).
"""

from pdekit.cli.main import _load_config, build_parser, main

__all__ = ["build_parser", "main", "_load_config"]
