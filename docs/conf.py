"""Sphinx configuration: MyST pages, MyST-NB notebooks executed at build time, API reference from docstrings.

Build (warnings are errors; from the repository root)::

    bash scripts/venv.sh python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the packages, also when they are not installed

project = "statespace"
author = "the statespace authors"
copyright = "2026, the statespace authors"
release = version = "0.1.0"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "public_api",  # docs/_ext/public_api.py: generates docs/api/*.rst, flags undocumented public objects
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store", "**/.ipynb_checkpoints"]
root_doc = "index"

# --- MyST: math as in the Markdown pages ($...$, $$...$$), fenced directives ---
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# --- notebooks: executed at every build (a fresh clone has no cache); a failing cell fails the build ---
nb_execution_mode = os.environ.get("STATESPACE_NB_EXECUTION", "cache")
nb_execution_cache_path = str(HERE / "_build" / ".jupyter_cache")
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 300  # seconds per cell
nb_merge_streams = True

# --- API reference ---
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autoclass_content = "class"
autosummary_generate = False  # the pages are written by public_api; the tables only link
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_ivar = True  # "Attributes:" as a field list: NamedTuple fields are documented by autodoc already
add_module_names = False
python_use_unqualified_type_names = True

# No intersphinx: the build must not need the network.

# Every cross-reference must resolve (-W turns a broken one into an error), except targets
# that are outside this site by design: other libraries' types (no intersphinx offline),
# private base classes that autodoc names in "Bases:", and the internal containers that
# public signatures return (kernel parameters, the stats layout), which are not API.
nitpicky = True
nitpick_ignore_regex = [
    ("py:class", r"(numpy|collections\.abc|pathlib|abc|typing)\..*"),
    ("py:class", r".*\._\w+"),
    ("py:class", r"hmm\.deep_kernels\.ChainKernelParams|hmm\.rul\.state\.SavedRULModel"),
    ("py:class", r"statespace\.linear_gaussian\.kernels\.StatsLayout|smc\.neural_drift\.NeuralDriftKernelParams"),
    ("py:class", r"hmm\.learned_emission\.ConditionedLearnedEmission|em_\.\w+"),
    # the IOHMM's and LearnedEmissionHMM's internal base, named in their "Bases:" line
    ("py:class", r"hmm\.deep_support\.NetworkChain"),
]

html_theme = "furo"
html_title = "statespace"
html_static_path = []
