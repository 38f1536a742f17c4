"""AlphaLoop Lab: a distributed, self-evolving strategy lab (paper trading only)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("alphaloop")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
