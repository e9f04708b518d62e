"""A sweep's user errors (issue 20): every trial's config is checked as research.main checks it
before DIR/sweep.json or any directory is written, so the corrected rerun in the same --workdir
runs; a sweep directory and a research.main workdir are never shared, in either order."""

import os
import subprocess
import sys

import pytest

from research.errors import ConfigError
from research.sweep import run as run_lib
from research.sweep import space
from tests.train import helpers


def _sweep(workdir, *flags) -> subprocess.CompletedProcess:
  return subprocess.run(
    [
      sys.executable,
      "-m",
      "research.sweep",
      f"--config={helpers.CONFIG_FILE}:test",
      f"--workdir={workdir}",
      *flags,
    ],
    cwd=helpers.REPO,
    env=helpers.env(),
    capture_output=True,
    text=True,
    timeout=300,
  )


def _error_line(result: subprocess.CompletedProcess) -> str:
  assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
  lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
  errors = [ln for ln in lines if ln.startswith("error: ")]
  assert len(errors) == 1 and errors == [ln for ln in result.stderr.splitlines() if ln.strip()]
  return errors[0]


def _listing(directory) -> list[str]:
  return sorted(
    os.path.relpath(os.path.join(root, name), directory)
    for root, dirs, files in os.walk(directory)
    for name in dirs + files
  )


GOOD = "--space=optimizer.learning_rate=choice(0.01,0.03)"


@pytest.fixture(scope="module")
def rejected_then_corrected(tmp_path_factory):
  """A sweep refused for a non-numeric learning rate, then the corrected one in the same
  --workdir."""
  workdir = tmp_path_factory.mktemp("sweep") / "s"
  rejected = _sweep(workdir, "--space=optimizer.learning_rate=choice(fast,slow)", "--trials=2")
  exists_after_rejection = os.path.exists(workdir)
  corrected = _sweep(workdir, GOOD, "--method=grid", "--trials=2")
  return workdir, rejected, exists_after_rejection, corrected


def test_a_non_numeric_learning_rate_is_one_line_and_the_corrected_rerun_runs(
  rejected_then_corrected,
):
  workdir, rejected, exists_after_rejection, corrected = rejected_then_corrected
  assert rejected.returncode == 2, rejected.stderr[-3000:]
  line = _error_line(rejected)
  assert "'fast' is not a float" in line and "optimizer.learning_rate" in line
  assert not exists_after_rejection  # no sweep.json to block the rerun
  assert corrected.returncode == 0, corrected.stderr[-3000:]
  assert "chosen: trial" in corrected.stdout and (workdir / "sweep.json").exists()


@pytest.mark.parametrize(
  "flags, message",
  [
    (
      ("--space=optimizer.learning_rate=choice(0.1,-1)",),
      "(optimizer.learning_rate=-1): optimizer.learning_rate=-1.0 must be a positive",
    ),
    (
      ("--space=optimizer.weight_decay=uniform(-1,1)", "--method=grid", "--trials=3"),
      "optimizer.weight_decay=-1.0 must be a finite number >= 0",
    ),
    (("--space=optimizer.clip_norm=choice(abc)",), "'abc' is not a float"),
    (("--space=optimizer.name=choice(adam,adamw)",), "optimizer.name='adamw' is unknown"),
    (("--space=optimizer.name=uniform(0,1)",), "0.0 is not a str"),
    (
      ("--space=optimizer.schedule.name=choice(constant,cosine)",),
      "requires positive decay_steps",
    ),
    (
      (GOOD, "--coarse_epochs=2"),
      "--coarse_epochs=2 set the stages of a coarse-to-fine sweep: add --refine=K",
    ),
    ((GOOD, "--refine=1", "--fine_epochs=0"), "--fine_epochs=0.0 must be a positive number"),
    (
      (GOOD, "--config.dataset.validation=0"),
      "dataset.validation=0 leaves no validation set, and a sweep chooses its trials by",
    ),
  ],
)
def test_a_trial_research_main_would_refuse_is_one_line_before_anything_is_written(
  flags, message, tmp_path
):
  result = _sweep(tmp_path / "s", *flags)
  assert result.returncode == 2, result.stderr[-3000:]
  assert message in _error_line(result)
  assert not os.path.exists(tmp_path / "s")


def test_the_checks_cover_values_the_first_stage_did_not_draw(tmp_path):
  """A refined stage draws choice values anew: each listed value is checked, drawn or not."""
  config = helpers.tiny_config()
  dims = [
    space.parse("optimizer.learning_rate=loguniform(1e-3,1e-1)", config),
    space.parse("optimizer.name=choice(adam,nope)", config),
  ]
  assert [p["optimizer.name"] for p in space.random_points(dims, 1, seed=2)] == ["adam"]
  with pytest.raises(ConfigError, match="optimizer.name='nope' is unknown"):
    run_lib.Sweep(config, str(tmp_path / "s"), dims, method="random", trials=1, seed=2, mode="auto")
  assert not os.path.exists(tmp_path / "s")


def test_research_main_refuses_a_sweep_directory(rejected_then_corrected):
  workdir = rejected_then_corrected[0]
  before = _listing(workdir)
  result = helpers.run_main(str(workdir))
  assert result.returncode == 2, result.stderr[-3000:]
  line = _error_line(result)
  assert f"workdir {str(workdir)!r} holds a sweep" in line and "another --workdir" in line
  assert _listing(workdir) == before


def test_a_sweep_refuses_a_research_main_workdir(tmp_path):
  workdir = tmp_path / "run"
  trained = helpers.run_main(str(workdir), "--config.num_train_steps=10")
  assert trained.returncode == 0, trained.stderr[-3000:]
  before = _listing(workdir)
  result = _sweep(workdir, GOOD)
  assert result.returncode == 2, result.stderr[-3000:]
  line = _error_line(result)
  assert f"--workdir={str(workdir)!r} holds a research.main run" in line
  assert "config.json" in line and "another --workdir" in line
  assert _listing(workdir) == before
