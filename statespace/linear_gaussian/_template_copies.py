"""Dimension-specialised template copies: the names :mod:`statespace._compile` provides for them.

The mechanism (a copy of a template module with ``D = 0`` / ``M = 0`` replaced by the sizes,
written to the cache directory, named by a hash of every file it reaches) is one half of
:mod:`statespace._compile`; this module keeps the names its callers import.
"""

from statespace._compile import MARKER, reached_files, specialised_copy, template_digest

__all__ = ["MARKER", "reached_files", "specialised_copy", "template_digest"]
