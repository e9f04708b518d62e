"""What `python -m research.main` says when something is wrong: one `error:` line, exit 2 (3 when
training diverged), no traceback unless --verbosity=1, and nothing written into the workdir."""

import errno
import glob
import gzip
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from research import errors as research_errors
from research.data import idx
from research.signals import Interrupted
from research.train import errors
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


# ----------------------------------------------------------------- hostile but realistic input


def _idx_dataset(directory, train_labels=None, compress=False):
  """An 8 x 8 IDX dataset (64 training, 16 test examples, labels 0..9) for mlp_digits:test."""
  rng = np.random.default_rng(0)
  labels = np.arange(64) % 10 if train_labels is None else np.asarray(train_labels)
  name = idx.write_split_dir(
    str(directory),
    {
      "train": (rng.integers(0, 256, (64, 8, 8), dtype=np.uint8), labels),
      "test": (rng.integers(0, 256, (16, 8, 8), dtype=np.uint8), np.arange(16) % 10),
    },
  )
  if compress:
    for path in glob.glob(os.path.join(directory, "*-ubyte")):
      with open(path, "rb") as f, gzip.open(path + ".gz", "wb") as out:
        out.write(f.read())
      os.remove(path)
  return name


def _truncate(path, keep_fraction=0.5):
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.truncate(int(size * keep_fraction))


def _label_200(tmp_path):
  labels = np.arange(64) % 10
  labels[5] = 200
  name = _idx_dataset(tmp_path / "data", labels)
  return [f"--config.dataset.name={name}"], ["split 'train' has label 200, outside [0, 10)"]


def _label_minus_1(tmp_path):
  labels = np.arange(64) % 10
  labels[5] = -1
  name = _idx_dataset(tmp_path / "data", labels)
  return [f"--config.dataset.name={name}"], ["split 'train' has label -1, outside [0,"]


def _truncated_gz(tmp_path):
  name = _idx_dataset(tmp_path / "data", compress=True)
  path = str(tmp_path / "data" / "train-images-idx3-ubyte.gz")
  _truncate(path)
  return [f"--config.dataset.name={name}"], [path, "truncated or damaged", "re-extract"]


def _truncated_raw(tmp_path):
  name = _idx_dataset(tmp_path / "data")
  path = str(tmp_path / "data" / "t10k-labels-idx1-ubyte")
  _truncate(path, 0.9)
  return [f"--config.dataset.name={name}"], [path, "truncated or damaged", "re-extract"]


def _nothing_to_fine_tune(tmp_path):
  (tmp_path / "empty").mkdir()
  return [f"--config.init_from={tmp_path / 'empty'}"], ["no checkpoint found at", "init_from"]


def _infinite_learning_rate(tmp_path):
  del tmp_path
  return ["--config.optimizer.learning_rate=inf"], ["optimizer.learning_rate=inf must be"]


@pytest.mark.parametrize(
  "case",
  [
    _label_200,
    _label_minus_1,
    _truncated_gz,
    _truncated_raw,
    _nothing_to_fine_tune,
    _infinite_learning_rate,
  ],
)
def test_hostile_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path):
  flags, expected = case(tmp_path)
  workdir = str(tmp_path / "run")
  result = helpers.run_main(workdir, *flags)
  assert result.returncode == 2, result.stderr[-3000:]
  line = _error_line(result)
  assert all(e in line for e in expected), line
  assert not os.path.exists(workdir)


def test_an_empty_workdir_is_refused_and_nothing_is_written_here(tmp_path):
  """`--workdir=` would otherwise put the run into the current directory."""
  result = subprocess.run(
    helpers.main_command(""),
    cwd=tmp_path,
    env={**helpers.env(), "PYTHONPATH": helpers.REPO},
    capture_output=True,
    text=True,
    timeout=180,
  )
  assert result.returncode == 2, result.stderr[-3000:]
  assert "--workdir='' is empty" in _error_line(result)
  assert os.listdir(tmp_path) == []


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
  workdir = tmp_path / "run"
  workdir.write_text("notes\n")
  result = helpers.run_main(str(workdir))
  assert result.returncode == 2, result.stderr[-3000:]
  assert f"--workdir={str(workdir)!r} is a file, not a directory" in _error_line(result)
  assert workdir.read_text() == "notes\n" and os.listdir(tmp_path) == ["run"]


@pytest.fixture
def read_only_dir(tmp_path):
  """A directory this process cannot write: chmod 555, or (root passes permission bits) a
  read-only tmpfs mounted on it."""
  directory = tmp_path / "ro"
  directory.mkdir()
  if os.geteuid() != 0:
    directory.chmod(0o555)
    yield directory
    directory.chmod(0o755)
    return
  mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(directory)]
  if subprocess.run(mount, capture_output=True).returncode:
    pytest.skip("root, and no read-only tmpfs can be mounted")
  try:
    yield directory
  finally:
    subprocess.run(["umount", "-l", str(directory)], check=False)


def test_a_workdir_that_cannot_be_written_is_refused(read_only_dir):
  workdir = str(read_only_dir / "run")
  result = helpers.run_main(workdir)
  assert result.returncode == 2, result.stderr[-3000:]
  line = _error_line(result)
  assert f"--workdir={workdir!r} is not writable" in line and "you can write" in line
  assert not os.path.exists(workdir)


def test_a_workdir_that_cannot_be_created_is_refused():
  """Under /proc no directory can be made, whatever the permissions say (even for root)."""
  workdir = "/proc/no_such_process/run"
  result = helpers.run_main(workdir)
  assert result.returncode == 2, result.stderr[-3000:]
  assert f"--workdir={workdir!r}" in _error_line(result)
  assert not os.path.exists(workdir)


# ------------------------------------------------------------------------ a bug is not a user error

_BUG_SCRIPT = """
import sys
from absl import app
from research import cli, main
from research.models import mlp

def boom(self, *args, **kwargs):
  raise ValueError("boom")

mlp.MLP.__call__ = boom
sys.argv = ["research.main", "--config={config}:test", "--workdir={workdir}"]
app.run(main.main, flags_parser=cli.parse_flags)
"""


def test_a_bug_exits_1_with_its_traceback(tmp_path):
  """A ValueError raised by code, not by a check of what the user gave, is a bug: Python's
  traceback and exit 1, never an `error:` line that blames the config."""
  script = _BUG_SCRIPT.format(config=helpers.CONFIG_FILE, workdir=tmp_path / "run")
  result = subprocess.run(
    [sys.executable, "-c", script],
    cwd=helpers.REPO,
    env=helpers.env(),
    capture_output=True,
    text=True,
    timeout=180,
  )
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Traceback" in result.stderr and "ValueError: boom" in result.stderr
  assert not any(ln.startswith("error:") for ln in result.stderr.splitlines())


def test_exit_code_of_each_kind_of_error():
  assert errors.exit_code(research_errors.ConfigError("bad")) == 2
  assert errors.exit_code(research_errors.MalformedDatasetError("bad")) == 2
  assert errors.exit_code(research_errors.NothingToFineTuneError("none")) == 2
  assert errors.exit_code(errors.DiskFullError("full")) == 2
  assert errors.exit_code(errors.WorkdirBusyError("busy")) == 2
  assert errors.exit_code(errors.DatasetNotFoundError("absent")) == 2
  assert errors.exit_code(errors.CheckpointMismatchError("other model")) == 2
  assert errors.exit_code(errors.DivergenceError("nan")) == 3
  assert errors.exit_code(errors.NonFiniteLossError("nan")) == 3
  assert errors.exit_code(Interrupted(signal.SIGTERM, 7)) == 143
  assert errors.exit_code(Interrupted(signal.SIGINT, 7)) == 130
  for bug in (ValueError("bad"), KeyError("k"), TypeError("t"), FileNotFoundError("f")):
    assert errors.exit_code(bug) is None
  # each keeps the built-in base its callers catch
  assert isinstance(research_errors.ConfigError("x"), ValueError)
  assert isinstance(research_errors.NothingToFineTuneError("x"), FileNotFoundError)
  assert isinstance(errors.WorkdirBusyError("x"), RuntimeError)
  assert isinstance(errors.DiskFullError("x"), OSError)


def test_a_full_disk_is_recognised_by_errno_at_any_depth():
  def chained(inner: BaseException, *, cause: bool) -> RuntimeError:
    try:
      try:
        raise inner
      except OSError as e:
        if cause:
          raise RuntimeError("tensorstore write failed") from e
        raise RuntimeError("orbax save failed")  # noqa: B904  (__context__ only)
    except RuntimeError as outer:
      return outer

  enospc = OSError(errno.ENOSPC, "No space left on device")
  assert errors.is_disk_full(enospc)
  assert errors.is_disk_full(chained(enospc, cause=True))
  assert errors.is_disk_full(chained(enospc, cause=False))
  deeper = ValueError("commit failed")
  deeper.__cause__ = chained(enospc, cause=True)
  assert errors.is_disk_full(deeper)
  assert not errors.is_disk_full(chained(OSError(errno.EACCES, "Permission denied"), cause=True))
  assert not errors.is_disk_full(RuntimeError("No space left on device"))  # errno, not the text
  # tensorstore's own error (what an Orbax save on a full disk raises) carries the errno as text
  tensorstore = ValueError(
    'RESOURCE_EXHAUSTED: Error writing "w/0.0" in OCDBT database at local file "/x/": Failed '
    "to write 2700702 bytes to file 11: No space left on device [os_error_code='28']"
  )
  assert errors.is_disk_full(chained(OSError(errno.EIO, "io"), cause=True)) is False
  wrapped = RuntimeError("save failed")
  wrapped.__cause__ = tensorstore
  assert errors.is_disk_full(tensorstore) and errors.is_disk_full(wrapped)
