# Sourced by scripts/run and scripts/test: a project venv in .venv, installed from pyproject.toml,
# reinstalled only when pyproject.toml changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Parcours needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
STAMP=.venv/.parcours-installed
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1)-${1:-run}"
if [ ! -f "$STAMP" ] || ! grep -qx -- "$WANT" "$STAMP"; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  if [ "${1:-run}" = test ]; then
    .venv/bin/python -m pip install --quiet -e '.[test]'
  else
    .venv/bin/python -m pip install --quiet -e .
  fi
  echo "$WANT" > "$STAMP"
fi
