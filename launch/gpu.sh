#!/usr/bin/env bash
# Train on one machine with all of its NVIDIA GPUs: one process that sees every GPU as a local
# JAX device; the training step splits each batch across them.
#
#   launch/gpu.sh [--cuda=13] [--python=python3] [--venv=.venv] [--gpus=0,1,...] [--no-install] \
#     [--dry-run] --config=experiments/configs/NAME.py --workdir=DIR [--config.KEY=VALUE ...]
#
# Steps (each printed before it runs; --dry-run prints them and runs nothing), from the
# repository root:
#   1. Unless --no-install: create the venv if missing, then `pip install -e '.[train]' "jax[cudaNN]"`
#      (the CUDA 13 extra by default, --cuda=12 for older drivers; the wheels bring CUDA and cuDNN,
#      only the NVIDIA driver must be installed).
#   2. List the GPUs JAX sees (fails when JAX finds no GPU instead of training on the CPU).
#   3. python -m research.main --config=... --workdir=... [overrides].
set -euo pipefail

readonly PROG="launch/gpu.sh"

usage() {
  cat <<EOF
usage: $PROG --config=CONFIG.py --workdir=DIR [options] [--config.KEY=VALUE ...]
  --cuda=12|13          CUDA major version of the jax extra (jax[cuda13] / jax[cuda12]); default 13
  --python=PYTHON       interpreter that creates the venv (>= 3.12 for current JAX); default python3
  --venv=DIR            virtual environment; default .venv in the repository
  --gpus=LIST           restrict to these GPUs (CUDA_VISIBLE_DEVICES); default all
  --no-install          use the venv as it is
  --dry-run             print every command, run none
  --config=PATH         ml_collections config file (required)
  --workdir=DIR         run directory (required)
  --config.KEY=VALUE    config overrides, passed to research.main unchanged
EOF
}

# shellcheck source=launch/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

CUDA="13" PYTHON="python3" VENV="" GPUS="" INSTALL=1 CONFIG="" WORKDIR=""
OVERRIDES=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --cuda=*) CUDA="${arg#*=}" ;;
    --python=*) PYTHON="${arg#*=}" ;;
    --venv=*) VENV="${arg#*=}" ;;
    --gpus=*) GPUS="${arg#*=}" ;;
    --no-install) INSTALL=0 ;;
    --dry-run) DRY_RUN=1 ;;
    --config=*) CONFIG="${arg#*=}" ;;
    --workdir=*) WORKDIR="${arg#*=}" ;;
    --config.*=*) OVERRIDES+=("$arg") ;;
    *) die "unknown argument '$arg' (options take the form --key=value; config overrides --config.KEY=VALUE)" ;;
  esac
done

missing=()
[[ -n "$CONFIG" ]] || missing+=("--config=experiments/configs/NAME.py")
[[ -n "$WORKDIR" ]] || missing+=("--workdir=DIR")
if (( ${#missing[@]} )); then
  die "missing required argument(s): ${missing[*]}"
fi
[[ "$CUDA" == 12 || "$CUDA" == 13 ]] || die "--cuda=$CUDA is not supported; use --cuda=13 or --cuda=12"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO_ROOT/.venv}"
run cd "$REPO_ROOT"

if [[ "$INSTALL" == 1 ]]; then
  if [[ "$DRY_RUN" == 1 || ! -x "$VENV/bin/python" ]]; then
    run "$PYTHON" -m venv "$VENV"
  fi
  run "$VENV/bin/pip" install -U pip
  run "$VENV/bin/pip" install -e ".[train]" "jax[cuda$CUDA]"
fi

if [[ -n "$GPUS" ]]; then
  echo "+ export CUDA_VISIBLE_DEVICES=$(quote "$GPUS")"
  export CUDA_VISIBLE_DEVICES="$GPUS"
fi
run "$VENV/bin/python" -c 'import jax; print(jax.devices("gpu"))'
run "$VENV/bin/python" -m research.main "--config=$CONFIG" "--workdir=$WORKDIR" "${OVERRIDES[@]}"
