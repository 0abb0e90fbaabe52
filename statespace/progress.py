"""Progress bars for long-running routines (EM, particle learning, Gibbs chains).

tqdm's ``auto`` front end draws a widget in Jupyter and text in a terminal; we
switch it off when the caller says ``progress=False`` or when stderr is not a
terminal (CI logs, piped output), so nothing ever depends on a terminal.
"""

from __future__ import annotations

import sys


def progress_bar(total: int, desc: str, progress: bool | None = True):
    """A tqdm bar, disabled when ``progress`` is false or output is not interactive."""
    from tqdm.auto import tqdm

    enabled = bool(progress) and (_in_notebook() or sys.stderr.isatty())
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython() if hasattr(shell, "get_ipython") else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"
