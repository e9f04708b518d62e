"""A vectorized sweep meets faults as `research.main` does, since both train through
`research.train.driver`: a signal saves and exits 130 / 143 and the rerun ends as an
uninterrupted sweep; a second sweep on the directory is refused at once; a taken-over lock
stops the sweep before its next save; a full disk is one line; a damaged checkpoint falls back
to the previous one (the sweep keeps `keep_checkpoints` like a run)."""

import glob
import json
import os
import signal
import time

import pytest

from tests.sweep.test_sweep import _sweep
from tests.train.test_cli_errors import small_disk  # noqa: F401  (a fixture)
from tests.train.test_faults import _damage

LONG = (
  "--config.num_train_steps=600",
  "--config.checkpoint_every_steps=20",
  "--config.eval_every_steps=200",
  "--config.steps_per_dispatch=10",
  "--config.log_every_steps=10",
)


def _chunk_checkpoints(workdir) -> list[str]:
  """The complete checkpoints of the sweep's chunk (not a save in progress, `N.orbax-...`)."""
  paths = glob.glob(os.path.join(workdir, "stage1_*", "checkpoints", "[0-9]*"))
  return [p for p in paths if os.path.basename(p).isdigit()]


def _wait_for_checkpoint(workdir, proc, timeout=200) -> None:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline and not _chunk_checkpoints(workdir):
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    time.sleep(0.1)
  assert _chunk_checkpoints(workdir), "no checkpoint within the timeout"
  time.sleep(0.5)


def _trials(workdir) -> list[dict]:
  """Each trial's numbers (validation; test on the chosen trial only) and parameter digest."""
  lines = (workdir / "trials.jsonl").read_text().splitlines()
  keep = ("trial", "validation_", "best_", "test_", "chosen", "params_sha256")
  return [{k: v for k, v in r.items() if k.startswith(keep)} for r in map(json.loads, lines)]


def _error_line(stderr: str) -> str:
  lines = [line for line in stderr.strip().splitlines() if line.startswith("error: ")]
  assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
  return lines[0]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("whole") / "sweep"
  out, err = _sweep(workdir, *LONG).communicate(timeout=400)
  assert "chosen: trial" in out, err[-3000:]
  return _trials(workdir)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_exits_and_the_rerun_ends_as_an_uninterrupted_sweep(
  signum, code, uninterrupted, tmp_path
):
  workdir = tmp_path / "sweep"
  proc = _sweep(workdir, *LONG)
  _wait_for_checkpoint(workdir, proc)
  proc.send_signal(signum)
  out, err = proc.communicate(timeout=200)
  assert proc.returncode == code, err[-3000:]
  assert f"interrupted by {signal.Signals(signum).name} at step" in out + err
  assert not (workdir / "trials.jsonl").exists()
  out, err = _sweep(workdir, *LONG).communicate(timeout=400)
  assert "chosen: trial" in out, err[-3000:]
  assert _trials(workdir) == uninterrupted  # metrics and parameter digests, every trial


def test_a_second_sweep_on_the_directory_is_refused_at_once(tmp_path):
  workdir, endless = tmp_path / "sweep", ("--config.num_train_steps=100000", *LONG[1:])
  first = _sweep(workdir, *endless)
  try:
    _wait_for_checkpoint(workdir, first)
    start = time.monotonic()
    second = _sweep(workdir, *endless)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2, err[-3000:]
    assert f"in use by pid {first.pid}" in _error_line(err)
    assert time.monotonic() - start < 60  # refused, not queued behind the first
    assert first.poll() is None  # the holder was not disturbed
  finally:
    first.kill()
    first.wait()


def test_a_sweep_whose_lock_was_taken_over_stops_before_its_next_save(tmp_path):
  workdir = tmp_path / "sweep"
  proc = _sweep(workdir, "--config.num_train_steps=100000", *LONG[1:])
  _wait_for_checkpoint(workdir, proc)
  (chunk,) = glob.glob(os.path.join(workdir, "stage1_*"))
  with open(os.path.join(chunk, ".lock"), "w") as f:  # what another host's run writes
    json.dump({"host": "other-host", "pid": 4242, "started": "now", "run_id": "x"}, f)
  _, err = proc.communicate(timeout=200)
  assert proc.returncode == 2, err[-3000:]
  line = _error_line(err)
  assert "another run took over workdir" in line and "pid 4242 on other-host" in line


def test_a_full_disk_is_one_line_naming_the_directory(small_disk):  # noqa: F811
  workdir = small_disk / "sweep"
  proc = _sweep(workdir, *LONG, "--config.keep_checkpoints=1000")
  _, err = proc.communicate(timeout=400)
  assert proc.returncode == 2, err[-3000:]
  assert "no space left on the device of" in _error_line(err)


def test_a_damaged_checkpoint_falls_back_to_the_previous_not_to_step_0(uninterrupted, tmp_path):
  workdir = tmp_path / "sweep"
  proc = _sweep(workdir, *LONG)
  deadline = time.monotonic() + 200
  while time.monotonic() < deadline and len(_chunk_checkpoints(workdir)) < 2:
    time.sleep(0.1)
  time.sleep(0.5)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  steps = sorted(int(os.path.basename(p)) for p in _chunk_checkpoints(workdir))
  assert len(steps) >= 2, steps  # keep_checkpoints (2 in the config) is kept
  (chunk,) = glob.glob(os.path.join(workdir, "stage1_*"))
  _damage(chunk, steps[-1], "garbage")
  out, err = _sweep(workdir, *LONG).communicate(timeout=400)
  assert "chosen: trial" in out, err[-3000:]
  assert f"checkpoint at step {steps[-1]} is unreadable" in out + err
  assert f"resumed from {chunk}/checkpoints/{steps[-2]}" in out
  assert _trials(workdir) == uninterrupted
