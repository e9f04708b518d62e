"""setup.sh picks the newest CPython >= 3.12: a python3.1x on PATH that does not run (a pyenv
shim for a version that is not selected) is skipped for pyenv's installed versions, and with
none of them it falls back to python3."""

import glob
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def _tools(folder: pathlib.Path) -> pathlib.Path:
  """A PATH folder with only what setup.sh's choice uses, and python3 (this interpreter), so
  that no python3.1x of the machine's own /usr/bin takes part."""
  folder.mkdir(parents=True, exist_ok=True)
  for tool in ("ls", "sort", "dirname"):
    (folder / tool).symlink_to(shutil.which(tool))
  (folder / "python3").symlink_to(sys.executable)
  return folder


def _pick(path_dirs: list[pathlib.Path], pyenv_root: pathlib.Path) -> str:
  env = {
    "PATH": os.pathsep.join(map(str, path_dirs)),
    "PYENV_ROOT": str(pyenv_root),
    "HOME": str(pyenv_root),
  }
  done = subprocess.run(
    [shutil.which("bash"), str(REPO / "setup.sh"), "--print-python"],
    env=env,
    capture_output=True,
    text=True,
    check=True,
  )
  return done.stdout.strip()


def _shim(folder: pathlib.Path, name: str) -> None:
  folder.mkdir(parents=True, exist_ok=True)
  shim = folder / name
  shim.write_text(f"#!/bin/sh\necho 'pyenv: {name}: command not found' >&2\nexit 127\n")
  shim.chmod(0o755)


def _a_real_python(minor: str) -> str:
  found = shutil.which(f"python{minor}")
  candidates = ([found] if found else []) + sorted(
    glob.glob(os.path.expanduser(f"~/.pyenv/versions/{minor}.*/bin/python"))
  )
  for candidate in candidates:
    if subprocess.run([candidate, "-c", "import venv, ensurepip"], check=False).returncode == 0:
      return candidate
  pytest.skip(f"no working CPython {minor} on this machine")


def test_a_broken_shim_is_skipped_for_pyenvs_newest_version(tmp_path):
  if sys.version_info < (3, 12):
    pytest.skip("the test interpreter is older than 3.12")
  minor = f"{sys.version_info.major}.{sys.version_info.minor}"
  real = _a_real_python(minor)
  _shim(tmp_path / "shims", "python3.13")
  _shim(tmp_path / "shims", "python3.12")
  for version in (f"{minor}.1", f"{minor}.10"):  # 3.x.10 is newer than 3.x.1 (sort -V)
    bin_dir = tmp_path / "pyenv" / "versions" / version / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(real)
  chosen = _pick([tmp_path / "shims", _tools(tmp_path / "tools")], tmp_path / "pyenv")
  assert chosen == str(tmp_path / "pyenv" / "versions" / f"{minor}.10" / "bin" / "python")


def test_without_a_312_or_newer_it_falls_back_to_python3(tmp_path):
  _shim(tmp_path / "shims", "python3.13")
  _shim(tmp_path / "shims", "python3.12")
  tools = _tools(tmp_path / "tools")
  chosen = _pick([tmp_path / "shims", tools], tmp_path / "no-pyenv")
  assert chosen == str(tools / "python3")
