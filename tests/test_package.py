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
