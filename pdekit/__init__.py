"""pdekit: scientific machine learning on PDEs on one torch solver core."""

__version__ = "0.1.0"
