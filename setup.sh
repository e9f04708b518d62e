#!/usr/bin/env bash
# Creates .venv at the repository root when it is missing and installs the project (editable)
# with the whole lab and the test tools ('.[train,test]'), with uv when it is on PATH, else pip;
# SETUP_NO_UV=1 forces pip. Safe to run again: it only installs
# what changed, and it never deletes an existing .venv.
#
# Python: the newest CPython >= 3.12 found (python3.13, python3.12 on PATH, then pyenv's
# installed versions), because current JAX needs 3.12 or newer; only when there is none, python3
# (on 3.11 pip resolves JAX 0.10.2, the last JAX for 3.11). The last line printed says which
# Python and JAX the environment has, and why. `./setup.sh --print-python` prints the Python a
# new .venv would get, and does nothing else.
set -euo pipefail
cd "$(dirname "$0")"

# Minor versions tried, newest first: every dependency of '.[train,test]' has wheels for them.
WANTED=(3.13 3.12)

usable() {  # a CPython that runs and can make a virtual environment with pip
  "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.implementation.name != "cpython")' \
    >/dev/null 2>&1
}

newest_python() {  # prints the path of the newest usable CPython >= 3.12, or fails
  local minor candidate root
  for minor in "${WANTED[@]}"; do
    candidate=$(command -v "python$minor" || true)  # a pyenv shim may exist and not run: usable()
    if [ -n "$candidate" ] && usable "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  root=$( (pyenv root 2>/dev/null) || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for minor in "${WANTED[@]}"; do
    for candidate in $(ls -d "$root"/versions/"$minor".*/bin/python 2>/dev/null | sort -rV); do
      if usable "$candidate"; then
        echo "$candidate"
        return 0
      fi
    done
  done
  return 1
}

version_of() { "$1" -c 'import platform; print(platform.python_version())'; }
NEWEST=$(newest_python || true)

if [ "${1:-}" = "--print-python" ]; then  # which Python a new .venv would get; changes nothing
  echo "${NEWEST:-$(command -v python3)}"
  exit 0
fi

if [ -x .venv/bin/python ]; then
  WHY="the existing .venv, kept"
  if [ -n "$NEWEST" ] && ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'
  then
    WHY="$WHY; Python $(version_of "$NEWEST") at $NEWEST would get current JAX: rebuild with"
    WHY="$WHY 'rm -rf .venv && ./setup.sh'"
  fi
else
  if [ -n "$NEWEST" ]; then
    PYTHON=$NEWEST
    WHY="the newest CPython >= 3.12 found, for current JAX"
  else
    PYTHON=$(command -v python3)
    WHY="no CPython >= 3.12 found (python3.13, python3.12, pyenv's versions), so python3;"
    WHY="$WHY JAX 0.10.2 is the last release for Python 3.11: install Python 3.12+ for current JAX"
  fi
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
# uv, where it is on PATH, installs the same requirements in a few seconds (measured here: 2-5 s
# against pip's 30 s, warm caches); pip is the path that always works, and the fallback.
INSTALLER=pip
if [ -z "${SETUP_NO_UV:-}" ] && command -v uv >/dev/null \
  && uv pip install -q --python .venv/bin/python -e '.[train,test]'; then
  INSTALLER=uv
else
  .venv/bin/python -m pip install -q -e '.[train,test]'
fi
.venv/bin/python - "$WHY" "$INSTALLER" <<'EOF'
import platform, sys
from importlib.metadata import version
print(f"setup: .venv has Python {platform.python_version()} ({sys.argv[1]}) and JAX "
      f"{version('jax')}, installed with {sys.argv[2]}")
EOF
