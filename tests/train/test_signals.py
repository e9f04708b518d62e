"""SIGTERM and SIGINT save a checkpoint and resume bit-identically; one writer per workdir."""

import json
import os
import random
import signal
import socket
import subprocess
import time

import pytest

from research.train import metrics as metrics_lib
from research.train import train_and_evaluate
from tests.train import helpers

# Long enough to be interrupted mid-run, short dispatches so that a signal is served quickly.
FLAGS = (
  "--config.num_train_steps=400",
  "--config.steps_per_dispatch=5",
  "--config.log_every_steps=5",
  "--config.eval_every_steps=200",
  "--config.checkpoint_every_steps=100",
  "--config.model.dropout_rate=0.1",
)


def _uninterrupted(tmp_path) -> str:
  config = helpers.tiny_config(
    num_train_steps=400,
    steps_per_dispatch=5,
    log_every_steps=5,
    eval_every_steps=200,
    checkpoint_every_steps=100,
  )
  return train_and_evaluate(config, str(tmp_path / "uninterrupted"))["params_sha256"]


def _start(workdir: str, log_path, *flags: str, env=None) -> subprocess.Popen:
  log = open(log_path, "w")  # a file, not a pipe nobody drains
  proc = subprocess.Popen(
    helpers.main_command(workdir, "test", *FLAGS, *flags),
    cwd=helpers.REPO,
    env=env or helpers.env(),
    stdout=log,
    stderr=subprocess.STDOUT,
  )
  log.close()
  return proc


def _logged_step(workdir: str) -> int:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return -1
  with open(path) as f:
    steps = [int(line.split('"step": ')[1].split(",")[0]) for line in f if '"step": ' in line]
  return max(steps, default=-1)


def _wait_for_step(workdir: str, step: int, proc: subprocess.Popen, timeout: float = 120) -> int:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    assert proc.poll() is None, f"the run ended early with code {proc.returncode}"
    seen = _logged_step(workdir)
    if seen >= step:
      return seen
    time.sleep(0.02)
  raise TimeoutError(f"no step {step} in {workdir} after {timeout} s")


def _final_digest(workdir: str) -> str:
  result = os.path.join(os.path.dirname(workdir), "result.json")
  done = helpers.run_main(workdir, *FLAGS, f"--result_file={result}")
  assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
  with open(result) as f:
    return json.load(f)["params_sha256"]


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_a_checkpoint_and_the_resumed_run_is_bit_identical(signum, code, tmp_path):
  workdir = str(tmp_path / "run")
  proc = _start(workdir, tmp_path / "log")
  _wait_for_step(workdir, 30, proc)
  proc.send_signal(signum)
  assert proc.wait(timeout=120) == code
  out = (tmp_path / "log").read_text()
  name = signal.Signals(signum).name
  line = [ln for ln in out.splitlines() if ln.startswith("interrupted by")]
  assert len(line) == 1 and line[0].startswith(f"interrupted by {name} at step ")
  assert line[0].endswith("; checkpoint saved; run the same command to resume")
  assert "Traceback" not in out
  step = int(line[0].split(" at step ")[1].split(";")[0])
  assert 30 <= step < 400 and os.path.isdir(os.path.join(workdir, "checkpoints", str(step)))
  assert _final_digest(workdir) == _uninterrupted(tmp_path)
  records = metrics_lib.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [r["step"] for r in records if r["split"] == "train"] == list(range(5, 401, 5))


def test_a_second_signal_exits_at_once_and_corrupts_nothing(tmp_path):
  workdir = str(tmp_path / "run")
  proc = _start(workdir, tmp_path / "log", "--config.checkpoint_every_steps=5")
  _wait_for_step(workdir, 30, proc)
  proc.send_signal(signal.SIGTERM)
  time.sleep(0.05)  # the first is being served: a dispatch, a save
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=120) == 143
  config = helpers.tiny_config(
    num_train_steps=400,
    steps_per_dispatch=5,
    log_every_steps=5,
    eval_every_steps=200,
    checkpoint_every_steps=5,
  )
  expected = train_and_evaluate(config, str(tmp_path / "whole"))["params_sha256"]
  result = os.path.join(tmp_path, "result.json")
  done = helpers.run_main(
    workdir, *FLAGS, "--config.checkpoint_every_steps=5", f"--result_file={result}"
  )
  assert done.returncode == 0, done.stderr[-2000:]
  with open(result) as f:
    assert json.load(f)["params_sha256"] == expected


def test_a_second_process_on_the_workdir_is_refused_at_once_naming_the_holder(tmp_path):
  workdir, long_run = str(tmp_path / "run"), "--config.num_train_steps=1000000"
  first = _start(workdir, tmp_path / "first.log", long_run)
  try:
    _wait_for_step(workdir, 5, first)
    for other in ((long_run,), (long_run, "--config.seed=1")):  # the same config, or another
      second = helpers.run_main(workdir, *FLAGS, *other)
      assert second.returncode == 2, second.stderr[-2000:]
      lines = second.stderr.strip().splitlines()
      assert len(lines) == 1 and lines[0].startswith("error: workdir ")
      assert f"in use by pid {first.pid} on {socket.gethostname()}" in lines[0]
    assert first.poll() is None  # the holder was not disturbed
  finally:
    first.kill()  # a lock held by a dead process never blocks: SIGKILL the holder, then go on
    first.wait()
  third = _start(workdir, tmp_path / "third.log", long_run)
  try:
    _wait_for_step(workdir, _logged_step(workdir) + 5, third)
  finally:
    third.kill()
    third.wait()
  assert "resumed from" in (tmp_path / "third.log").read_text()


def test_a_run_whose_lock_file_was_taken_over_stops_at_its_next_checkpoint(tmp_path):
  """Where flock does not reach across hosts (gcsfuse), a second run rewrites the lock file;
  the first notices before its next save and stops instead of interleaving checkpoints."""
  workdir = str(tmp_path / "run")
  first = _start(workdir, tmp_path / "first.log", "--config.num_train_steps=1000000")
  _wait_for_step(workdir, 5, first)
  with open(os.path.join(workdir, ".lock"), "w") as f:  # what the other host's run writes
    json.dump({"host": "other-host", "pid": 4242, "started": "now", "run_id": "x"}, f)
  assert first.wait(timeout=120) == 2
  out = (tmp_path / "first.log").read_text()
  assert "error: another run took over workdir" in out and "pid 4242 on other-host" in out


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_sigterm_to_one_of_two_processes_stops_both_at_the_same_step(tmp_path):
  workdir, port = str(tmp_path / "run"), _free_port()
  procs = []
  for pid in range(2):
    procs.append(
      _start(
        workdir,
        tmp_path / f"p{pid}.log",
        f"--coordinator_address=127.0.0.1:{port}",
        "--num_processes=2",
        f"--process_id={pid}",
        env=helpers.env(device_count=2),
      )
    )
  try:
    _wait_for_step(workdir, 30, procs[0])
    procs[1].send_signal(signal.SIGTERM)  # only process 1 gets the signal
    codes = [p.wait(timeout=180) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  logs = [(tmp_path / f"p{pid}.log").read_text() for pid in range(2)]
  assert codes == [143, 143], logs
  step = int(logs[0].split("interrupted by SIGTERM at step ")[1].split(";")[0])
  assert os.path.isdir(os.path.join(workdir, "checkpoints", str(step)))
  assert "Traceback" not in logs[0] + logs[1]


@pytest.mark.slow
def test_soak_twenty_random_kills_and_terms_end_bit_identical(tmp_path):
  """20 faults at random moments (start-up and mid-save included), then the run ends as one
  that never stopped."""
  workdir = str(tmp_path / "run")
  rng = random.Random(0)
  flags = ("--config.num_train_steps=4000", "--config.checkpoint_every_steps=20")
  faults = 0
  while faults < 20:
    proc = _start(workdir, tmp_path / f"{faults}.log", *flags)
    time.sleep(rng.uniform(1.0, 7.0))  # imports, compilation, some steps and saves
    if proc.poll() is not None:
      pytest.fail(f"the run finished after {faults} faults; make it longer")
    signum = rng.choice([signal.SIGKILL, signal.SIGTERM])
    proc.send_signal(signum)
    assert proc.wait(timeout=120) == (-signal.SIGKILL if signum == signal.SIGKILL else 143)
    faults += 1
  done = helpers.run_main(workdir, *FLAGS, *flags, f"--result_file={tmp_path}/r.json", timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  with open(tmp_path / "r.json") as f:
    digest = json.load(f)["params_sha256"]
  config = helpers.tiny_config(
    num_train_steps=4000,
    steps_per_dispatch=5,
    log_every_steps=5,
    eval_every_steps=200,
    checkpoint_every_steps=20,
  )
  assert digest == train_and_evaluate(config, str(tmp_path / "whole"))["params_sha256"]
