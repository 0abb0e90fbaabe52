"""The documentation site: every tutorial shows its figures, the API reference lists every public name.

The site is built once, by ``.ci/run`` (``python -m sphinx -W -b html docs docs/_build/html``), and
these tests read its HTML; they skip when no build is present, unless ``$STATESPACE_DOCS_BUILT``
names the build (as CI does), in which case a missing build is a failure. The public names are
enumerated here from the packages themselves, independently of the generator of the API pages
(``docs/_ext/public_api.py``).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.md"))
PACKAGES = ("statespace", "hmm", "smc")


def _site() -> Path:
    named = os.environ.get("STATESPACE_DOCS_BUILT")
    site = Path(named) if named else ROOT / "docs" / "_build" / "html"
    if not site.is_absolute():
        site = ROOT / site
    if not (site / "index.html").is_file():
        if named:
            pytest.fail(f"STATESPACE_DOCS_BUILT={named}: no built site there (index.html missing)")
        pytest.skip(
            "no built documentation in docs/_build/html; build it with "
            "`bash scripts/venv.sh python -m sphinx -W -b html docs docs/_build/html`"
        )
    return site


def _public_namespaces() -> list[str]:
    """The three packages and every public subpackage."""
    out = []
    for top in PACKAGES:
        pkg = importlib.import_module(top)
        out.append(top)
        out += [
            m.name
            for m in pkgutil.walk_packages(pkg.__path__, top + ".")
            if m.ispkg and not any(p.startswith("_") for p in m.name.split("."))
        ]
    return out


def _exports(ns: str) -> list[str]:
    """``__all__``, or the non-underscore attributes that are not modules and not foreign callables."""
    module = importlib.import_module(ns)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    top = ns.split(".")[0]
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or isinstance(obj, types.ModuleType):
            continue
        if callable(obj) and not str(getattr(obj, "__module__", "")).startswith(top):
            continue
        names.append(name)
    return names


def _resolve(qualified: str):
    """The object a documented name such as ``statespace.LinearGaussianSSM`` refers to (None: none)."""
    parts = qualified.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
        return obj
    return None


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_page_shows_its_figures(source):
    site = _site()
    page = site / "notebooks" / f"{source.stem}.html"
    assert page.is_file(), f"{source.name} was not rendered (no {page})"
    html = page.read_text()
    images = re.findall(r'<img[^>]*\bsrc="([^"]+)"', html)
    assert images, f"{page.name}: no figure in the rendered notebook"
    for src in images:
        if src.startswith("data:image/"):
            continue
        assert (page.parent / src).resolve().is_file(), f"{page.name}: image {src} missing from the site"
    assert "Traceback (most recent call last)" not in html, f"{page.name}: a cell failed"
    # A tutorial shows what the library computes, not warnings about its own machinery.
    warned = re.search(r"\b\w*Warning: ", html)
    assert warned is None, f"{page.name}: a cell printed a warning ({warned and warned.group(0)})"


def test_notebooks_exist_for_every_tutorial_in_the_index():
    index = (ROOT / "docs" / "index.md").read_text()
    listed = set(re.findall(r"^notebooks/(\w+)$", index, re.M))
    assert listed == {p.stem for p in NOTEBOOKS}


def test_api_reference_lists_every_public_name():
    site = _site()
    missing = []
    for ns in _public_namespaces():
        page = site / "api" / f"{ns}.html"
        if not page.is_file():
            missing.append(f"{ns} (no page)")
            continue
        html = page.read_text()
        module = importlib.import_module(ns)
        for name in _exports(ns):
            qualified = f"{ns}.{name}"
            if f'id="{qualified}"' in html:
                continue  # documented on this page
            # listed here, documented (as the same object) on the page of the namespace that exports it first
            found = False
            for href, anchor in re.findall(r'href="([^"#]*)#([\w.]+)"', html):
                if anchor.rsplit(".", 1)[-1] != name or _resolve(anchor) is not getattr(module, name):
                    continue
                target = (page.parent / href).resolve() if href else page
                if target.is_file() and f'id="{anchor}"' in target.read_text():
                    found = True
                    break
            if not found and isinstance(getattr(module, name), types.ModuleType):
                found = f'href="{name}.html"' in html or f'href="{qualified}.html"' in html
            if not found:
                missing.append(qualified)
    assert not missing, f"public names absent from the API reference: {missing}"


def test_each_example_script_has_a_tutorial():
    """The examples and the notebooks cover the same workflows: each script is named by a
    tutorial, and every script a tutorial names exists."""
    text = {p.stem: p.read_text() for p in NOTEBOOKS}
    named = {m for t in text.values() for m in re.findall(r"examples/(\w+\.py)", t)}
    scripts = {p.name for p in (ROOT / "examples").glob("*.py")}
    assert named <= scripts, f"tutorials name missing scripts: {sorted(named - scripts)}"
    assert scripts <= named, f"example scripts without a tutorial: {sorted(scripts - named)}"
