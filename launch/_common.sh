# shellcheck shell=bash
# Shared by launch/gpu.sh and launch/tpu_vm.sh (sourced; expects PROG set by the caller).
# launch/slurm.sbatch keeps its own copy: sbatch runs a copy of the script from its spool
# directory, where a file beside it cannot be found.

die() {
  echo "$PROG: error: $*" >&2
  echo "run '$PROG --help' for the options" >&2
  exit 2
}

# Prints one argument so that a shell reads it back unchanged: bare when it holds only safe
# characters, otherwise in single quotes.
quote() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# Joins arguments into one shell command line.
join_quoted() {
  local out="" arg
  for arg in "$@"; do
    out+="${out:+ }$(quote "$arg")"
  done
  printf '%s' "$out"
}

# Prints a command, then runs it unless DRY_RUN=1.
DRY_RUN=0
run() {
  echo "+ $(join_quoted "$@")"
  if [[ "$DRY_RUN" == 0 ]]; then
    "$@"
  fi
}
