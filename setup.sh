#!/usr/bin/env bash
# Creates .venv at the repository root when it is missing and installs the project
# (editable) with its test extras. Safe to run again: it only installs what changed.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -e '.[test]'
