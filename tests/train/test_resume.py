"""Exact resume: a run stopped (cleanly or by SIGKILL) and restarted ends bit-identical."""

import os
import signal
import subprocess
import time

from research.train import metrics as metrics_lib
from research.train import train_and_evaluate
from tests.train import helpers


def test_resumed_run_is_bit_identical_and_metrics_are_not_duplicated(tiny_run, tmp_path):
  workdir, result = tiny_run
  resumed = str(tmp_path / "resumed")
  # Dropout on, so the per-step RNG is part of what must be restored.
  first = train_and_evaluate(helpers.tiny_config(num_train_steps=10), resumed)
  assert first["step"] == 10
  second = train_and_evaluate(helpers.tiny_config(), resumed)
  assert second["step"] == 20
  helpers.assert_bitwise_equal(helpers.final_params(workdir), helpers.final_params(resumed))
  assert second["params_sha256"] == result["params_sha256"]
  records = metrics_lib.read_jsonl(os.path.join(resumed, "metrics.jsonl"))
  reference = metrics_lib.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  keys = [(r["step"], r["split"]) for r in records]
  assert keys == [(r["step"], r["split"]) for r in reference]
  for split in ("validation", "test"):  # the test rows, once, at the end of both
    assert [r for r in records if r["split"] == split] == [
      r for r in reference if r["split"] == split
    ]
  assert [r["params"] for r in records if r["split"] == "test"] == ["final", "best"]
  assert {k: v for k, v in second.items() if k.startswith(("validation_", "test_", "final_"))} == {
    k: v for k, v in result.items() if k.startswith(("validation_", "test_", "final_"))
  }
  # Started again once finished: nothing to do, same answer.
  again = train_and_evaluate(helpers.tiny_config(), resumed)
  assert again["params_sha256"] == result["params_sha256"]
  assert again["test_accuracy"] == result["test_accuracy"]
  records = metrics_lib.read_jsonl(os.path.join(resumed, "metrics.jsonl"))
  assert [(r["step"], r["split"]) for r in records] == keys  # the test rows, not twice


def _wait_for_step(path: str, step: int, proc: subprocess.Popen, timeout: float = 120) -> int:
  """Blocks until metrics.jsonl has a train record at >= step; returns that step."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    assert proc.poll() is None, f"the run ended early with code {proc.returncode}"
    if os.path.exists(path):
      with open(path) as f:
        steps = [int(line.split('"step": ')[1].split(",")[0]) for line in f if '"step": ' in line]
      if steps and max(steps) >= step:
        return max(steps)
    time.sleep(0.05)
  raise TimeoutError(f"no step {step} in {path} after {timeout} s")


def test_sigkill_mid_run_then_restart_is_bit_identical(tmp_path):
  flags = (
    "--config.model.dropout_rate=0.1",
    "--config.num_train_steps=80",
    "--config.checkpoint_every_steps=10",
    "--config.log_every_steps=5",
    "--config.eval_every_steps=40",
  )
  killed = str(tmp_path / "killed")
  log = open(tmp_path / "killed.log", "w")  # a file, not a pipe nobody drains
  proc = subprocess.Popen(
    helpers.main_command(killed, "test", *flags),
    cwd=helpers.REPO,
    env=helpers.env(),
    stdout=log,
    stderr=subprocess.STDOUT,
  )
  try:
    seen = _wait_for_step(os.path.join(killed, "metrics.jsonl"), 35, proc)
    os.kill(proc.pid, signal.SIGKILL)
  finally:
    proc.wait()
    log.close()
  assert proc.returncode == -signal.SIGKILL and seen < 80
  restarted = helpers.run_main(killed, *flags)
  assert restarted.returncode == 0, restarted.stderr[-3000:]
  assert "resumed from" in restarted.stdout
  uninterrupted = str(tmp_path / "uninterrupted")
  config = helpers.tiny_config(
    num_train_steps=80, checkpoint_every_steps=10, log_every_steps=5, eval_every_steps=40
  )
  train_and_evaluate(config, uninterrupted)
  helpers.assert_bitwise_equal(helpers.final_params(uninterrupted), helpers.final_params(killed))
  records = metrics_lib.read_jsonl(os.path.join(killed, "metrics.jsonl"))
  assert [r["step"] for r in records if r["split"] == "train"] == list(range(5, 81, 5))
