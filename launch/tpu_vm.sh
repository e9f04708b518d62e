#!/usr/bin/env bash
# Create a Cloud TPU VM (or pod slice), install this repository on every worker and train on all
# of them at once.
#
#   launch/tpu_vm.sh --name=NAME --zone=ZONE [--accelerator-type=v4-8] [--version=RUNTIME] \
#     [--project=PROJECT] [--repo=GIT_URL_OR_LOCAL_DIR] [--ref=BRANCH] [--skip-create] [--delete] \
#     [--spot] [--retries=N] [--bucket=BUCKET] [--dry-run] \
#     --config=experiments/configs/NAME.py --workdir=DIR [--config.KEY=VALUE ...]
#
# Steps (each printed before it runs; --dry-run prints them and runs nothing):
#   1. gcloud compute tpus tpu-vm create (skipped with --skip-create, to reuse a running VM).
#   2. Source on all workers: a git URL is cloned (or pulled) on each worker; a local directory
#      (default: this checkout) is packed with `git archive HEAD` (committed files only), copied
#      with `tpu-vm scp --worker=all` and unpacked.
#   3. Install on all workers: uv (from PyPI) makes a Python 3.12 venv, then
#      `uv pip install -e '.[train]' "jax[tpu]"`.
#   4. With --bucket=BUCKET: mount the bucket with gcsfuse at ~/gcs/BUCKET on every worker. The
#      workdir must outlive the VM (a preempted spot VM loses its disk) and, on a multi-host slice,
#      be shared by all workers (Orbax writes one checkpoint from all hosts): pass
#      --workdir=~/gcs/BUCKET/RUN, or any other path all workers mount.
#   5. Train on all workers with `python -m research.main --distributed`. On a TPU slice every
#      worker runs the same command; with --distributed, research.main calls
#      jax.distributed.initialize() with no arguments, and JAX reads the coordinator, process
#      count and process id from the TPU VM metadata (one-host VMs work too).
#   6. With --delete: gcloud compute tpus tpu-vm delete --quiet.
#
# Preemption (--spot VMs, maintenance events): the VM's processes get SIGTERM before it stops;
# research.main saves a checkpoint at the step it reached and exits 143. With --retries=N, a
# training run that ends with 143, or whose ssh connection drops (255: the VM went away), is
# restarted up to N times: if the VM is no longer READY it is deleted and created again, the
# source copied and installed again (steps 1-4), and the same command resumes from the workdir's
# checkpoints, ending bit-identical to a run that never stopped. Running this script again with
# the same arguments (and --skip-create if the VM still runs) does the same by hand.
set -euo pipefail

readonly PROG="launch/tpu_vm.sh"
readonly REMOTE_DIR="research"   # relative to the remote user's home

usage() {
  cat <<EOF
usage: $PROG --name=NAME --zone=ZONE --config=CONFIG.py --workdir=DIR [options] [--config.KEY=VALUE ...]
  --name=NAME               TPU VM name (required)
  --zone=ZONE               zone, e.g. us-central2-b (required)
  --accelerator-type=TYPE   e.g. v4-8 (one host), v4-32 (pod slice); default v4-8
  --version=RUNTIME         TPU software version; default tpu-ubuntu2204-base
  --project=PROJECT         gcloud project (default: the gcloud configuration's)
  --repo=SOURCE             git URL to clone, or a local checkout to copy (default: this one)
  --python-version=X.Y      Python for the workers' venv (installed by uv); default 3.12
  --ref=REF                 branch or tag to clone when --repo is a git URL; default main
  --skip-create             reuse an existing TPU VM
  --delete                  delete the TPU VM after training (also when training fails)
  --spot                    create a spot VM (cheaper; preemptible at any time: use --retries)
  --retries=N               restart up to N times after a preemption (exit 143 or a lost ssh)
  --bucket=BUCKET           mount gs://BUCKET with gcsfuse at ~/gcs/BUCKET on every worker
  --dry-run                 print every command, run none
  --config=PATH             ml_collections config file, relative to the repository (required)
  --workdir=DIR             run directory; ~/gcs/BUCKET/... (with --bucket) on spot VMs and
                            multi-host slices (required)
  --config.KEY=VALUE        config overrides, passed to research.main unchanged
EOF
}

# shellcheck source=launch/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

NAME="" ZONE="" ACCELERATOR_TYPE="v4-8" VERSION="tpu-ubuntu2204-base" PROJECT=""
REPO="" REF="main" PYTHON_VERSION="3.12" SKIP_CREATE=0 DELETE=0 CONFIG="" WORKDIR=""
SPOT=0 RETRIES=0 BUCKET=""
OVERRIDES=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --name=*) NAME="${arg#*=}" ;;
    --zone=*) ZONE="${arg#*=}" ;;
    --accelerator-type=*) ACCELERATOR_TYPE="${arg#*=}" ;;
    --version=*) VERSION="${arg#*=}" ;;
    --project=*) PROJECT="${arg#*=}" ;;
    --repo=*) REPO="${arg#*=}" ;;
    --ref=*) REF="${arg#*=}" ;;
    --python-version=*) PYTHON_VERSION="${arg#*=}" ;;
    --skip-create) SKIP_CREATE=1 ;;
    --delete) DELETE=1 ;;
    --spot) SPOT=1 ;;
    --retries=*) RETRIES="${arg#*=}" ;;
    --bucket=*) BUCKET="${arg#*=}" ;;
    --dry-run) DRY_RUN=1 ;;
    --config=*) CONFIG="${arg#*=}" ;;
    --workdir=*) WORKDIR="${arg#*=}" ;;
    --config.*=*) OVERRIDES+=("$arg") ;;
    *) die "unknown argument '$arg' (options take the form --key=value; config overrides --config.KEY=VALUE)" ;;
  esac
done

missing=()
[[ -n "$NAME" ]] || missing+=("--name=NAME")
[[ -n "$ZONE" ]] || missing+=("--zone=ZONE")
[[ -n "$CONFIG" ]] || missing+=("--config=experiments/configs/NAME.py")
[[ -n "$WORKDIR" ]] || missing+=("--workdir=DIR")
if (( ${#missing[@]} )); then
  die "missing required argument(s): ${missing[*]}"
fi
[[ "$RETRIES" =~ ^[0-9]+$ ]] || die "--retries=$RETRIES is not a count; use an integer >= 0"
if [[ "$WORKDIR" == gs://* ]]; then
  die "--workdir=$WORKDIR is a bucket URL; research.main writes through the file system:" \
    "pass --bucket=BUCKET and --workdir=~/gcs/BUCKET/RUN (gcsfuse mounts it on every worker)"
fi

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="${REPO:-$(dirname "$SCRIPT_DIR")}"

GCLOUD_TPU=(gcloud compute tpus tpu-vm)
SCOPE=("--zone=$ZONE")
if [[ -n "$PROJECT" ]]; then
  SCOPE+=("--project=$PROJECT")
fi

on_all_workers() {
  run "${GCLOUD_TPU[@]}" ssh "$NAME" "${SCOPE[@]}" --worker=all --command="$1"
}

delete_vm() {
  run "${GCLOUD_TPU[@]}" delete "$NAME" "${SCOPE[@]}" --quiet
}

readonly INTERRUPTED=143 SSH_LOST=255  # research.main stopped by SIGTERM; ssh lost the VM

create_vm() {
  local create=("${GCLOUD_TPU[@]}" create "$NAME" "${SCOPE[@]}"
    "--accelerator-type=$ACCELERATOR_TYPE" "--version=$VERSION")
  if [[ "$SPOT" == 1 ]]; then
    create+=(--spot)
  fi
  run "${create[@]}"
}

copy_source() {
  if [[ "$REPO" == *://* || "$REPO" == git@* ]]; then
    on_all_workers "$(join_quoted git clone --depth=1 "--branch=$REF" "$REPO" "$REMOTE_DIR") \
|| (cd $REMOTE_DIR && git fetch --depth=1 origin $(quote "$REF") && git checkout FETCH_HEAD)"
  else
    [[ "$DRY_RUN" == 1 || -d "$REPO/.git" ]] \
      || die "--repo=$REPO is neither a git URL nor a git checkout; pass a clone URL or a checkout"
    local archive="${TMPDIR:-/tmp}/research-$NAME.tar.gz"
    run git -C "$REPO" archive --format=tar.gz "--output=$archive" HEAD
    run "${GCLOUD_TPU[@]}" scp "$archive" "$NAME:research.tar.gz" "${SCOPE[@]}" --worker=all
    on_all_workers "mkdir -p $REMOTE_DIR && tar -xzf research.tar.gz -C $REMOTE_DIR"
  fi
}

install() {
  # The TPU images ship an older system Python than current JAX needs (>= 3.12): uv fetches one.
  on_all_workers "python3 -m pip install --user -U uv && cd $REMOTE_DIR \
&& ~/.local/bin/uv venv --allow-existing --python=$(quote "$PYTHON_VERSION") .venv \
&& ~/.local/bin/uv pip install --python=.venv/bin/python -e \".[train]\" \"jax[tpu]\""
  if [[ -n "$BUCKET" ]]; then
    on_all_workers "mkdir -p ~/gcs/$(quote "$BUCKET") && (mountpoint -q ~/gcs/$(quote "$BUCKET") \
|| gcsfuse --implicit-dirs $(quote "$BUCKET") ~/gcs/$(quote "$BUCKET"))"
  fi
}

vm_state() {
  "${GCLOUD_TPU[@]}" describe "$NAME" "${SCOPE[@]}" --format='value(state)' 2>/dev/null || true
}

TRAIN=(
  .venv/bin/python -m research.main --distributed "--config=$CONFIG" "--workdir=$WORKDIR"
  "${OVERRIDES[@]}"
)
train() {
  on_all_workers "cd $REMOTE_DIR && $(join_quoted "${TRAIN[@]}")"
}

if [[ "$SKIP_CREATE" == 0 ]]; then
  create_vm
fi
if [[ "$DELETE" == 1 && "$DRY_RUN" == 0 ]]; then
  trap delete_vm EXIT
fi
copy_source
install

attempt=0
while true; do
  status=0
  train || status=$?
  if [[ "$DRY_RUN" == 1 ]]; then
    if (( RETRIES > 0 )); then
      echo "# if training exits $INTERRUPTED (preempted after saving a checkpoint) or ssh loses" \
        "the VM ($SSH_LOST), up to $RETRIES times: when the VM is not READY, delete and create" \
        "it and copy and install again; then the same training command, which resumes"
    fi
    break
  fi
  if (( status != INTERRUPTED && status != SSH_LOST )) || (( attempt >= RETRIES )); then
    break
  fi
  attempt=$((attempt + 1))
  echo "$PROG: training stopped with status $status (preempted?); restart $attempt of" \
    "$RETRIES" >&2
  state="$(vm_state)"
  if [[ "$state" != READY ]]; then
    echo "$PROG: the TPU VM is ${state:-gone}; creating it again" >&2
    if [[ -n "$state" ]]; then
      delete_vm
    fi
    create_vm
    copy_source
    install
  fi
done

if [[ "$DELETE" == 1 && "$DRY_RUN" == 1 ]]; then
  delete_vm
fi
exit "$status"
