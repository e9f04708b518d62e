"""Without the Fashion-MNIST files a figure that asks for them runs on the 8x8 digits, and its
progress line and report say so (the numbers are then not the default size's)."""

import json
import os
import subprocess
import sys

from experiments.figures import __main__ as figures_main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_fallback_sentence_only_when_fashion_mnist_was_asked_for_and_not_run():
  assert (
    figures_main._fallback({"dataset": "fashion_mnist_idx"}, {"dataset": "fashion_mnist_idx"})
    is None
  )
  assert figures_main._fallback({"dataset": "digits"}, {"dataset": "digits"}) is None
  assert figures_main._fallback({}, {}) is None
  line = figures_main._fallback({"dataset": "fashion_mnist_idx"}, {"dataset": "digits"})
  assert line.startswith("ran on digits, not Fashion-MNIST") and "dataset-fashion-mnist" in line


def test_missing_fashion_mnist_is_said_in_the_progress_line_and_the_report(tmp_path):
  out = tmp_path / "out"
  env = {**os.environ, "RESEARCH_FASHION_MNIST_DIR": str(tmp_path / "absent")}
  result = subprocess.run(
    [sys.executable, "-m", "experiments.figures", f"--out={out}", "--only", "templates"]
    + ["--size=test"],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  progress = [ln for ln in result.stdout.splitlines() if ln.startswith("[1/1] templates")]
  assert progress and "digits" in progress[0] and "not Fashion-MNIST" in progress[0], result.stdout
  (entry,) = json.loads((out / "report.json").read_text())
  assert entry["data"]["dataset"] == "digits" and "dataset-fashion-mnist" in entry["fallback"]
  assert "**Data: ran on digits" in (out / "REPORT.md").read_text()
