"""Data sets in their publishers' layouts (loaders validate and never assume a location).

Not imported by ``import statespace``: ``import statespace.datasets``.
"""

from .cmapss import (
    CMAPSSData,
    CMAPSSTable,
    OperatingConditionNormalizer,
    SensorFeatures,
    load_cmapss,
    read_cmapss_table,
    read_rul_file,
)

__all__ = [
    "CMAPSSData",
    "CMAPSSTable",
    "OperatingConditionNormalizer",
    "SensorFeatures",
    "load_cmapss",
    "read_cmapss_table",
    "read_rul_file",
]
