"""Package-level contracts: 8 simulated devices, light imports."""

import subprocess
import sys

import jax


def test_eight_simulated_devices():
  assert jax.local_device_count() == 8


def test_research_import_is_light():
  code = (
    "import sys, research\n"
    "heavy = [m for m in ('tensorflow', 'flax', 'tensorflow_datasets') if m in sys.modules]\n"
    "assert not heavy, heavy\n"
  )
  subprocess.run([sys.executable, "-c", code], check=True)


def _without(module: str, code: str) -> subprocess.CompletedProcess:
  """Runs `code` in a fresh interpreter where `module` cannot be imported (as without the extra)."""
  block = f"import sys; sys.modules[{module!r}] = None\n"
  return subprocess.run(
    [sys.executable, "-c", block + code], capture_output=True, text=True, check=False
  )


def test_the_optimizers_import_without_the_train_extra():
  done = _without("flax", "import research, research.optim as ro; print(ro.adam(1e-3))")
  assert done.returncode == 0, done.stderr


def test_importing_research_train_without_the_extra_names_it():
  done = _without("flax", "import research.train")
  assert done.returncode == 1
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith("research._extras.MissingExtraError: research.train needs the 'train'")
  assert "missing: flax" in last and "pip install 'sl2-lecture[train]'" in last


def test_python_m_research_main_without_the_extra_is_one_line():
  run_main = (
    "import runpy; sys.argv = ['-m', '--help']; "
    "runpy.run_module('research.main', run_name='__main__', alter_sys=True)"
  )
  done = _without("ml_collections", run_main)
  assert done.returncode == 2
  assert done.stderr.strip().splitlines() == [
    "error: python -m research.main needs the 'train' extra, which is not installed here "
    "(missing: ml_collections); install it with: pip install 'sl2-lecture[train]' "
    "(from a clone: pip install -e '.[train]', or ./setup.sh)"
  ]
