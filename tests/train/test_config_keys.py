"""`--config.model.ARG` / `--config.optimizer.ARG` for arguments the recipe does not list, and
unknown keys as one `error:` line naming the key, its section and the nearest keys (issue 20)."""

import json
import os

import numpy as np
import pytest

from tests.train import helpers

TWO_STEPS = ("--config.num_train_steps=2",)


def _error_line(result) -> str:
  assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
  lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
  return lines[0]


def _saved_config(workdir: str) -> dict:
  with open(os.path.join(workdir, "config.json")) as f:
    return json.load(f)


def test_options_the_recipe_does_not_list_are_set_and_used(tmp_path):
  relu, tanh, rule = (str(tmp_path / n) for n in ("relu", "tanh", "rule"))
  for workdir, flags in (
    (relu, ()),
    (tanh, ("--config.model.activation=tanh",)),
    (rule, ("--config.optimizer.b1=0.5", "--config.optimizer.nesterov=true")),
  ):
    result = helpers.run_main(workdir, *TWO_STEPS, *flags)
    assert result.returncode == 0, result.stderr[-3000:]
  # Only overridden keys are added: a run without them saves the config it saved before.
  assert "activation" not in _saved_config(relu)["model"]
  assert "b1" not in _saved_config(relu)["optimizer"]
  assert _saved_config(tanh)["model"]["activation"] == "tanh"
  saved = _saved_config(rule)["optimizer"]
  assert saved["b1"] == 0.5 and saved["nesterov"] is True  # typed as the rule's arguments
  base = helpers.final_params(relu)
  for other in (tanh, rule):
    params = helpers.final_params(other)
    assert any(not np.array_equal(base[k], params[k]) for k in base), other
  # The same command resumes; dropping the override is another config.
  result = helpers.run_main(tanh, "--config.num_train_steps=4", "--config.model.activation=tanh")
  assert result.returncode == 0 and "resumed from" in result.stdout, result.stderr[-3000:]
  result = helpers.run_main(tanh, "--config.num_train_steps=4")
  assert result.returncode == 2
  assert "model.activation: 'tanh' there, '<absent>' now" in _error_line(result)


@pytest.mark.parametrize(
  "flags, expected",
  [
    (
      ("--config.model.activaton=tanh",),
      "unknown config key --config.model.activaton: config.model of mlp has no 'activaton'. "
      'Did you mean "activation"?',
    ),
    (
      ("--config.batchsize=3",),
      "unknown config key --config.batchsize: config has no 'batchsize'. "
      'Did you mean "batch_size"',
    ),
    (
      ("--config.optimizr.learning_rate=0.1",),
      "config has no 'optimizr'. Did you mean \"optimizer\"?",
    ),
    (("--config.optimizer.b3=0.1",), "config.optimizer of adam has no 'b3'. Did you mean \"b"),
    (("--config.optimizer.schedule.nam=x",), "config.optimizer.schedule has no 'nam'"),
    (("--config.model.zzz=1",), "config.model of mlp has no 'zzz'; its keys are activation, "),
    (
      ("--config.model.name=resnet20", "--config.model.widthz=(8,16,32)"),
      'config.model of resnet20 has no \'widthz\'. Did you mean "width", "widths" or "depth"?',
    ),
    (("--config.model.name=resnet7", "--config.model.widths=(8,)"), "unknown model 'resnet7'"),
    (("--config.model.axis_name=x",), "the program sets model.axis_name itself"),
    (("--config.model.num_pieces=1.5",), "invalid literal for int() with base 10: '1.5'"),
    (("--config.model.activation=swish",), "unknown activation 'swish'"),
  ],
)
def test_unknown_keys_and_bad_values_are_one_line_exit_2(flags, expected, tmp_path):
  workdir = str(tmp_path / "run")
  result = helpers.run_main(workdir, *TWO_STEPS, *flags)
  assert result.returncode == 2
  assert expected in _error_line(result)
  assert not os.path.exists(workdir)
