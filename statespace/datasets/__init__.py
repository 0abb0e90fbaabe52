"""Data sets in their publishers' layouts (loaders validate and never assume a location).

Not imported by ``import statespace``: ``import statespace.datasets``.
"""

from . import cmapss
from .cmapss import *  # noqa: F403  (the public names of each data set, listed once in its package)

__all__ = list(cmapss.__all__)
