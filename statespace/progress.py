"""Progress bars for long-running routines (EM, particle learning, Gibbs chains).

In Jupyter (with ipywidgets installed) the bar is a widget, elsewhere text;
it is off when the caller says ``progress=False`` or when stderr is not a
terminal (CI logs, piped output), so nothing ever depends on a terminal. A
disabled bar is tqdm's plain one, so a notebook without ipywidgets shows no
warning about a widget it was never going to draw.
"""

from __future__ import annotations

import importlib.util
import sys


def progress_bar(total: int, desc: str, progress: bool | None = True):
    """A tqdm bar, disabled when ``progress`` is false or output is not interactive."""
    from tqdm import tqdm

    notebook = _in_notebook()
    enabled = bool(progress) and (notebook or sys.stderr.isatty())
    if enabled and notebook and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython() if hasattr(shell, "get_ipython") else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"
