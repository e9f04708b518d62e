"""Two processes on 127.0.0.1 (jax.distributed, 2 CPU devices each) train one model together."""

import json
import socket
import subprocess

import pytest

from research.train import checkpoint, loop
from tests.train import helpers


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.parametrize("in_memory", [True, False])
def test_two_processes_finish_and_agree(in_memory, tmp_path):
  workdir, port = str(tmp_path / "run"), _free_port()
  procs, logs = [], []
  for pid in range(2):
    logs.append(open(tmp_path / f"process_{pid}.log", "w"))
    command = helpers.main_command(
      workdir,
      "test",
      "--config.num_train_steps=10",
      f"--config.dataset.in_memory={in_memory}",
      f"--coordinator_address=127.0.0.1:{port}",
      "--num_processes=2",
      f"--process_id={pid}",
      f"--result_file={tmp_path}/result_{pid}.json",
    )
    procs.append(
      subprocess.Popen(
        command,
        cwd=helpers.REPO,
        env=helpers.env(device_count=2),
        stdout=logs[-1],
        stderr=subprocess.STDOUT,
      )
    )
  try:
    codes = [p.wait(timeout=240) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
    for log in logs:
      log.close()
  output = [(tmp_path / f"process_{pid}.log").read_text()[-3000:] for pid in range(2)]
  assert codes == [0, 0], output
  results = [json.loads((tmp_path / f"result_{pid}.json").read_text()) for pid in range(2)]
  assert results[0]["step"] == results[1]["step"] == 10
  assert results[0]["params_sha256"] == results[1]["params_sha256"]
  assert results[0]["validation_accuracy"] == results[1]["validation_accuracy"]
  assert results[0]["test_accuracy"] == results[1]["test_accuracy"]
  assert "4 devices, 2 process(es)" in output[0]
  # Each process trained on its own half of the split.
  assert [r["input"] for r in results] == ["memory" if in_memory else "host"] * 2
  assert results[0]["train_records"] == [0, 575] and results[1]["train_records"] == [575, 1150]
  # The checkpoint written by both processes holds the parameters both report.
  params = checkpoint.load_variables(workdir)["params"]
  assert loop.params_digest(params) == results[0]["params_sha256"]
