"""optax 0.2.8's own test files, run from the installed package with research.optim's factories
in place of optax's same-named ones (`tests/optim/optax_swap.py` does the swap).

Each file runs in a fresh process (the swap must happen before the file is imported, and must
not leak into our other tests, which compare us against optax). The default run keeps the
tests that concern the swapped factories (`--optax-swap-only`) except the `LONG_TESTS`;
`-m slow` runs whole files (those and every other test in them), and runs optax unswapped to
check that the failures listed in `OPTAX_OWN_FAILURES` are optax's own.

By hand, for one file:
    PYTHONPATH=. python -m pytest -p tests.optim.optax_swap --pyargs optax._src.alias_test
"""

import json
import os
import pathlib
import subprocess
import sys

import optax
import pytest

from tests.optim import optax_swap

# optax's own test files import scikit-learn (alias_test: sklearn.datasets), which the base
# install (jax, optax, numpy) does not bring; the rest of tests/optim runs there.
pytest.importorskip("sklearn", reason="optax's test files need scikit-learn (the 'train' extra)")

REPO = pathlib.Path(__file__).resolve().parents[2]

MODULES = (
  "optax._src.alias_test",
  "optax._src.transform_test",
  "optax.transforms._clipping_test",
  "optax.transforms._conditionality_test",
  "optax.transforms._accumulation_test",
  "optax.transforms._combining_test",
  "optax.transforms._masking_test",
  "optax.tree_utils._state_utils_test",
  "optax.contrib._schedule_free_test",
  "optax.contrib._common_test",
  "optax._src.sharding_test",
)

# The long tests (10,000-step loops per optimizer and dtype, 30,000-step scans, mixed-precision
# sweeps): about two thirds of the time of the default selection, so they run with -m slow.
LONG_TESTS = (
  "AliasTest::test_optimization",
  "ContribTest::test_optimizers",
  "AccumulationTest::test_multi_steps_mixed_precision",
)

# Tests that fail on optax 0.2.8 itself on this stack (JAX 0.10.2, XLA:CPU), with or without our
# factories, and touch none of them. The slow test below checks that they fail unswapped too.
OPTAX_OWN_FAILURES = {
  "optax.transforms._clipping_test": {
    "ClippingTest::test_clip_by_block_rms": (
      "optax's clip_by_block_rms: rms 0.9999999 != 1.0 to 7 places (float32 rounding)"
    ),
  },
  # These three run only because the plugin fixes the file's version-string comparison.
  "optax._src.sharding_test": {
    "ShardingTest::test_microbatch_with_explicit_sharding_sharded": (
      "optax.microbatching: reshape of an int32[2,8@x] array needs out_sharding on JAX 0.10"
    ),
    "ShardingTest::test_state_sharding_type_init_match_update_lbfgs": (
      "optax.lbfgs ravels the sharded float16[2,8@x,4] params (reshape needs out_sharding)"
    ),
    "ShardingTest::test_state_sharding_type_preserved_with_jit_lbfgs": (
      "optax.lbfgs ravels the sharded float16[2,8@x,4] params (reshape needs out_sharding)"
    ),
  },
}

# Tests that fail with our factories because of a deliberate, documented difference from
# optax (the README's table). None.
DIFFERENCES: dict[str, dict[str, str]] = {}


# The default selection runs in two processes of about equal length (with -n 2, side by side):
# alias_test alone, and the other files together (one process start instead of ten).
GROUPS = {"alias": MODULES[:1], "others": MODULES[1:]}


def run_suite(modules, tmp_path, *options: str) -> dict:
  """Runs optax test files in one subprocess; returns the plugin's per-test report."""
  report = tmp_path / "report.json"
  env = dict(
    os.environ,
    PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
  )
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
  command = [
    sys.executable,
    "-m",
    "pytest",
    "-p",
    "tests.optim.optax_swap",
    "--pyargs",
    *modules,
    "-q",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:xdist",
    "-o",
    "addopts=",
    f"--optax-swap-report={report}",
    *options,
  ]
  done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
  if not report.exists():
    raise AssertionError(f"{modules} did not run:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
  with open(report) as f:
    return json.load(f)


def _failures(report: dict) -> dict[str, str]:
  return {
    key: entry["message"] for key, entry in report["tests"].items() if entry["outcome"] == "failed"
  }


def _listed(table: dict[str, dict[str, str]]) -> dict[str, str]:
  return {
    f"{module}::{test}": why for module, tests in table.items() for test, why in tests.items()
  }


def _check(modules, report: dict) -> None:
  allowed = {**_listed(OPTAX_OWN_FAILURES), **_listed(DIFFERENCES)}
  unexpected = {k: v for k, v in _failures(report).items() if k not in allowed}
  assert not unexpected, "failures with our factories:\n" + "\n".join(
    f"  {k}: {v}" for k, v in sorted(unexpected.items())
  )
  for module in modules:
    tests = {k: e for k, e in report["tests"].items() if k.startswith(module + "::")}
    assert any(e["outcome"] == "passed" for e in tests.values()), f"{module}: no test passed"
    # Our factories really ran (sharding_test builds its optimizers when it is imported).
    assert (module == "optax._src.sharding_test" and report["used_at_import"]) or any(
      e["used_ours"] for e in tests.values()
    ), f"{module}: none of our factories ran"


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_optax_suite_with_our_factories(group, tmp_path):
  skip = ",".join(name.split("::")[1] for name in LONG_TESTS)
  _check(
    GROUPS[group],
    run_suite(GROUPS[group], tmp_path, "--optax-swap-only", f"--optax-swap-skip={skip}"),
  )


@pytest.mark.slow
@pytest.mark.parametrize("module", MODULES)
def test_optax_suite_whole_files_with_our_factories(module, tmp_path):
  _check([module], run_suite([module], tmp_path))


@pytest.mark.slow
def test_listed_failures_are_optax_own(tmp_path):
  report = run_suite(sorted(OPTAX_OWN_FAILURES), tmp_path, "--optax-swap-baseline")
  assert set(_listed(OPTAX_OWN_FAILURES)) <= set(_failures(report))
  assert not any(e["used_ours"] for e in report["tests"].values())


def test_swap_covers_every_same_named_factory():
  names = {
    "sgd",
    "adam",
    "rmsprop",
    "adagrad",
    "adadelta",
    "clip",
    "clip_by_global_norm",
    "global_norm",
    "trace",
    "scale_by_adam",
    "scale_by_rms",
    "scale_by_stddev",
    "scale_by_adadelta",
    "scale_by_learning_rate",
  }
  assert set(optax_swap.SWAPPED) == names
  assert all(callable(getattr(optax, name)) for name in names)
