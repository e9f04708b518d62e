"""`python -m experiments.figures --set KEY=VALUE`: a value out of range or of the wrong type is
one `error:` line and exit 2 before any figure runs (1 stays a failed check or a bug)."""

import os
import subprocess
import sys

import pytest

from experiments.figures import __main__ as figures_main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
  "item, message",
  [
    ("steps=-1", "--set steps=-1 for figure 'overfitting': steps must be an integer > 0"),
    ("batch_size=0", "--set batch_size=0 for figure 'overfitting': batch_size must be"),
    ("eval_every=0", "--set eval_every=0 for figure 'overfitting': eval_every must be"),
    ("seed=-1", "--set seed=-1 for figure 'overfitting': a seed is an integer >= 0"),
    ("steps=None", "--set steps=None for figure 'overfitting': steps takes an integer"),
    ("seed=True", "--set seed=True for figure 'overfitting': seed takes an integer"),
    ("max_train=-3", "--set max_train=-3 for figure 'overfitting': max_train must be"),
    ("learning_rate=-0.1", "--set learning_rate=-0.1 for figure 'overfitting'"),
  ],
)
def test_an_override_out_of_range_is_one_line_exit_2_and_runs_nothing(item, message, tmp_path):
  out = tmp_path / "out"
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.figures",
      f"--out={out}",
      "--only",
      "overfitting",
      "--size=test",
      "--set",
      item,
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
  lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: "), lines
  assert message in lines[0]
  assert not out.exists()  # nothing ran, nothing written


def test_overrides_in_range_are_taken():
  config = figures_main._config(
    "overfitting", "test", [("steps", 5), ("max_train", None), ("seed", 3), ("width", 16)]
  )
  assert (config.steps, config.max_train, config.seed, config.width) == (5, None, 3, 16)
  config = figures_main._config("densenet_vs_resnet", "test", [("seeds", (0, 4))])
  assert tuple(config.seeds) == (0, 4)
  with pytest.raises(ValueError, match="seeds are integers >= 0"):
    figures_main._config("densenet_vs_resnet", "test", [("seeds", (0, -4))])
