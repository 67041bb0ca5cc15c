"""pdekit: scientific machine learning on PDEs on one torch solver core."""

from pdekit._version import __version__  # noqa: F401 (re-exported)


def __getattr__(name: str):
    # Lazy top-level shortcuts: `import pdekit` must not import torch-heavy or optional packages.
    if name == "load_model":
        from pdekit.models import load_model

        return load_model
    if name == "get_model":
        from pdekit.models import get_model

        return get_model
    raise AttributeError(f"module 'pdekit' has no attribute {name!r}")
