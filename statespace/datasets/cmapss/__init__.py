"""NASA's CMAPSS turbofan data: the loader (``loader``) and the features the RUL models read (``features``).

The loader reads any directory in NASA's layout (FD001 to FD004); the
features are fitted on training engines and applied unchanged to new ones.
The dataset-free pieces they build on (health indicator, smoothing, column
selection) are ``statespace.prognostics.features``.
"""

from .features import OperatingConditionNormalizer, SensorFeatures
from .loader import CMAPSSData, CMAPSSTable, load_cmapss, read_cmapss_table, read_rul_file

__all__ = [
    "CMAPSSData",
    "CMAPSSTable",
    "OperatingConditionNormalizer",
    "SensorFeatures",
    "load_cmapss",
    "read_cmapss_table",
    "read_rul_file",
]
