"""Data sets in their publishers' layouts (loaders validate and never assume a location)."""

from .cmapss import (
    CMAPSSData,
    CMAPSSTable,
    OperatingConditionNormalizer,
    load_cmapss,
    read_cmapss_table,
    read_rul_file,
)

__all__ = [
    "CMAPSSData",
    "CMAPSSTable",
    "OperatingConditionNormalizer",
    "load_cmapss",
    "read_cmapss_table",
    "read_rul_file",
]
