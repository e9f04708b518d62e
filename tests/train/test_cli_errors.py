"""What `python -m research.main` says when something is wrong: one `error:` line, exit 2 (3 when
training diverged), no traceback unless --verbosity=1, and nothing written into the workdir."""

import os
import subprocess
import sys

import pytest

from tests.train import helpers


def _error_line(result: subprocess.CompletedProcess) -> str:
  assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
  lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
  return lines[0]


@pytest.mark.parametrize(
  "flags, expected",
  [
    (("--config.optimizer.learnin_rate=0.1",), 'Did you mean "learning_rate"'),
    (("--config.model.name=resnet7",), "unknown model 'resnet7'"),
    (("--config.freeze=(unclosed",), "not a valid regex"),
    (("--config.batch_size=abc",), "invalid literal for int() with base 10: 'abc'"),
    (("--config.batch_size=12",), "batch_size=12 does not divide"),
    (("--config.batch_size=4096",), "batch_size=4096 needs 4096 training examples"),
    (
      ("--config.dataset.name=mnist", "--config.dataset.data_dir=/nonexistent/tfds"),
      "'mnist' is not prepared",
    ),
    (("--config.dataset.in_memory=sometimes",), "dataset.in_memory='sometimes' must be"),
  ],
)
def test_user_errors_are_one_line_exit_2_and_write_nothing(flags, expected, tmp_path):
  workdir = str(tmp_path / "run")
  result = helpers.run_main(workdir, *flags)
  assert result.returncode == 2
  assert expected in _error_line(result)
  assert not os.path.exists(workdir)


def test_a_missing_config_file_is_one_line(tmp_path):
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "research.main",
      "--config=experiments/configs/nope.py",
      f"--workdir={tmp_path}/run",
    ],
    cwd=helpers.REPO,
    env=helpers.env(),
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert result.returncode == 2 and "nope.py" in _error_line(result)


def test_verbosity_1_shows_the_traceback(tmp_path):
  result = helpers.run_main(str(tmp_path / "run"), "--config.model.name=resnet7", "--verbosity=1")
  assert result.returncode == 2 and "Traceback" in result.stderr
  assert "error: unknown model 'resnet7'" in result.stderr


def test_divergence_exits_3_with_one_line(tmp_path):
  result = helpers.run_main(
    str(tmp_path / "run"), "--config.optimizer.learning_rate=1e6", "--config.num_train_steps=40"
  )
  assert result.returncode == 3
  assert "the run diverged" in _error_line(result)


@pytest.fixture
def small_disk(tmp_path):
  """A 3 MB tmpfs (root only): room for the run's start, not for its checkpoints."""
  mount = tmp_path / "disk"
  mount.mkdir()
  if (
    os.geteuid() != 0
    or subprocess.run(
      ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True
    ).returncode
  ):
    pytest.skip("needs root to mount a small tmpfs")
  try:
    yield mount
  finally:
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_one_line_naming_the_directory_and_the_last_good_step(small_disk):
  workdir = str(small_disk / "run")
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "research.main",
      f"--config={helpers.CONFIG_FILE}",
      f"--workdir={workdir}",
      "--config.progress_bar=False",
      "--config.checkpoint_every_steps=50",
      "--config.keep_checkpoints=100",
    ],
    cwd=helpers.REPO,
    env=helpers.env(),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 2, result.stderr[-3000:]
  line = _error_line(result)
  assert f"no space left on the device of {workdir}" in line
  if "checkpoints up to step" in line:
    step = int(line.split("checkpoints up to step ")[1].split(" ")[0])
    assert os.path.isdir(os.path.join(workdir, "checkpoints", str(step)))
  else:
    assert "no checkpoint has been saved yet" in line
