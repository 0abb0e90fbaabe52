#!/usr/bin/env bash
# Create (once) a Python >= 3.12 virtual environment in .venv, install the
# project with its test, benchmark and documentation extras, then run the given command in it:
#   bash scripts/venv.sh python examples/quickstart.py
#   bash scripts/venv.sh python -m pytest -q
#   bash scripts/venv.sh python -m sphinx -W --keep-going -b html docs docs/_build/html
set -euo pipefail
cd "$(dirname "$0")/.."

ok() { "$@" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
  local c v
  for c in ${PYTHON:-} python3.13 python3.12 python3 python; do
    if command -v "$c" >/dev/null 2>&1 && ok "$c"; then echo "$c"; return 0; fi
  done
  # pyenv installs 3.12+ behind shims that only answer when that version is selected.
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])' | sort -rV); do
      c=$(PYENV_VERSION="$v" pyenv which python3 2>/dev/null || true)
      if [ -n "$c" ] && ok "$c"; then echo "$c"; return 0; fi
    done
  fi
  return 1
}

if [ ! -x .venv/bin/python ] || ! ok .venv/bin/python; then
  PY=$(find_python) || { echo "error: Python >= 3.12 is required (ArviZ 1.x needs it); install python3.12 or set PYTHON=/path/to/python3.12" >&2; exit 2; }
  echo "creating .venv with $PY ($("$PY" --version 2>&1))" >&2
  rm -rf .venv
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml | cksum | cut -d' ' -f1)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test,bench,docs]"
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
exec "$@"
