"""Hooks of the robustness suite: the issue-18 marker and the per-class outcome table.

Every test of this folder is tagged ``@pytest.mark.issue18(cls, expect)`` with
the failure class of issue 18 it exercises (0: plain bad input, which already
held) and the answer the contract demands (``"error"``: a library error naming
the argument; ``"result"``: a correct result without NaN). At the end of a run
the suite prints, per class, how many cases gave a clear error, a correct
result, or something wrong (a failed or an expected-to-fail case); set
``ROBUSTNESS_TABLE=path.json`` to also write each case's outcome to a file.
"""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

import statespace

# --------------------------------------------------------------------------- outcome table
_TABLE: dict = {}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "issue18(cls, expect): failure class of issue 18 and the answer the contract demands"
    )


def pytest_runtest_makereport(item, call):
    marker = item.get_closest_marker("issue18")
    if marker is None or call.when != "call":
        return
    cls = marker.args[0] if marker.args else marker.kwargs["cls"]
    expect = marker.kwargs.get("expect", marker.args[1] if len(marker.args) > 1 else "result")
    if call.excinfo is not None and call.excinfo.errisinstance(pytest.skip.Exception):
        return
    if call.excinfo is None:
        outcome = "clear error" if expect == "error" else "correct"
        # a test whose contract allows either answer says which one it got (record_property("outcome", ...))
        outcome = dict(item.user_properties).get("outcome", outcome)
    else:
        outcome = "wrong"
    _TABLE[item.nodeid] = (int(cls), outcome)


def pytest_terminal_summary(terminalreporter):
    if not _TABLE:
        return
    counts = Counter(_TABLE.values())
    classes = sorted({c for c, _ in _TABLE.values()})
    tr = terminalreporter
    tr.write_sep("-", "issue 18 robustness cases per failure class")
    tr.write_line(f"statespace imported from {os.path.dirname(statespace.__file__)}")
    tr.write_line(f"{'class':>5} {'clear error':>12} {'correct':>8} {'wrong':>6}")
    for c in classes:
        tr.write_line(f"{c:>5} {counts[(c, 'clear error')]:>12} {counts[(c, 'correct')]:>8} {counts[(c, 'wrong')]:>6}")
    path = os.environ.get("ROBUSTNESS_TABLE")
    if path:
        with open(path, "w") as f:
            json.dump({k: list(v) for k, v in sorted(_TABLE.items())}, f, indent=1)
