"""pdekit: scientific machine learning on PDEs on one torch solver core."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy top-level shortcuts: `import pdekit` must not import torch-heavy or optional packages.
    if name == "load_model":
        from pdekit.models import load_model

        return load_model
    if name == "get_model":
        from pdekit.models import get_model

        return get_model
    raise AttributeError(f"module 'pdekit' has no attribute {name!r}")
