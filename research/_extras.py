"""Which optional dependencies ("extras") each part of the package needs.

The base install (jax, optax, numpy) serves `research.optim`. Everything else (`research.models`,
`.data`, `.train`, `.sweep`, `python -m research.main`) needs the `train` extra; those modules
call `require("train", ...)` before importing it, so a missing extra is one line naming what to
install instead of a `ModuleNotFoundError` from deep inside Flax or Orbax.
"""

import importlib.util
import sys

DISTRIBUTION = "sl2-lecture"

# extra -> the modules it provides (what pyproject.toml's extra of the same name installs).
EXTRAS: dict[str, tuple[str, ...]] = {
  "train": (
    "flax",
    "orbax.checkpoint",
    "ml_collections",
    "absl",
    "grain",
    "tensorflow_datasets",
    "importlib_resources",
    "sklearn",
    "matplotlib",
    "tqdm",
    "tensorboardX",
    "tifffile",
    "filelock",
  ),
}


class MissingExtraError(ImportError):
  """A part of the package was imported without the extra that installs its dependencies."""


def _installed(module: str) -> bool:
  if sys.modules.get(module) is not None:
    return True
  parent = module.partition(".")[0]
  if importlib.util.find_spec(parent) is None:
    return False
  return parent == module or importlib.util.find_spec(module) is not None


def missing(extra: str) -> list[str]:
  """The modules of `extra` that cannot be imported here."""
  return [m for m in EXTRAS[extra] if not _installed(m)]


def message(extra: str, what: str, absent: list[str]) -> str:
  return (
    f"{what} needs the '{extra}' extra, which is not installed here (missing: "
    f"{', '.join(absent)}); install it with: pip install '{DISTRIBUTION}[{extra}]' "
    f"(from a clone: pip install -e '.[{extra}]', or ./setup.sh)"
  )


def require(extra: str, what: str, *, program: bool = False) -> None:
  """Raises MissingExtraError (one line naming the extra) when `extra` is not installed.

  For a program (`program=True`, or under `python -m research.X`, where sys.argv[0] is "-m"
  while runpy imports the packages of the module to run) it prints that line as `error: ...` and
  exits 2 instead, as every other user error of our programs does.
  """
  absent = missing(extra)
  if not absent:
    return
  if program or sys.argv[:1] == ["-m"]:
    print(f"error: {message(extra, 'python -m ' + what, absent)}", file=sys.stderr)
    raise SystemExit(2)
  raise MissingExtraError(message(extra, what, absent))
