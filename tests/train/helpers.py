"""Tiny configs and subprocess helpers shared by the training tests."""

import os
import subprocess
import sys

import numpy as np

from experiments.configs import mlp_digits
from research.train import checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_FILE = os.path.join(REPO, "experiments", "configs", "mlp_digits.py")


def tiny_config(**overrides):
  """mlp_digits:test (width 32, batch 16, 20 steps, dropout 0.1) with dotted-key overrides."""
  config = mlp_digits.get_config("test")
  config.model.dropout_rate = 0.1  # so the per-step dropout keys matter
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def final_params(workdir: str) -> dict:
  """Flattened {'path': ndarray} of the latest checkpoint's params and batch_stats."""
  from research.train.finetune import flatten  # noqa: PLC0415

  variables = checkpoint.load_variables(workdir)
  return {f"{c}/{k}": v for c in variables for k, v in flatten(variables[c]).items()}


def assert_bitwise_equal(a: dict, b: dict) -> None:
  assert sorted(a) == sorted(b)
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key, strict=True)


def main_command(workdir: str, config_arg: str = "test", *flags: str) -> list[str]:
  return [
    sys.executable,
    "-m",
    "research.main",
    f"--config={CONFIG_FILE}:{config_arg}",
    f"--workdir={workdir}",
    *flags,
  ]


def env(device_count: int | None = None) -> dict:
  out = dict(os.environ)
  if device_count is not None:
    out["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={device_count}"
  out.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  return out


def run_main(
  workdir: str,
  *flags: str,
  config_arg: str = "test",
  timeout: int = 180,
  device_count: int | None = None,
) -> subprocess.CompletedProcess:
  return subprocess.run(
    main_command(workdir, config_arg, *flags),
    cwd=REPO,
    env=env(device_count),
    capture_output=True,
    text=True,
    timeout=timeout,
  )
