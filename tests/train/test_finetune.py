"""Fine-tuning: init_from matches paths, re-initializes a changed head, freezes by regex."""

import shutil

import jax
import numpy as np
import optax
import pytest

from research import models
from research.train import checkpoint, finetune, train_and_evaluate
from research.train import state as state_lib
from tests.train import helpers

HEAD = models.head_pattern(models.create("mlp", num_classes=10))


def _fresh(num_classes=10, width=32):
  model = models.create("mlp", num_classes=num_classes, depth=2, width=width)
  variables = state_lib.init_variables(model, jax.random.PRNGKey(5), (8, 8, 1))
  return jax.tree.map(np.asarray, dict(variables))


def test_new_head_is_reinitialized_and_reported(tiny_run):
  workdir, _ = tiny_run
  loaded = checkpoint.load_variables(workdir)
  fresh = _fresh(num_classes=7)
  merged, report = finetune.merge_variables(fresh, loaded, HEAD)
  assert sorted(report.reinitialized) == ["params/head/bias", "params/head/kernel"]
  np.testing.assert_array_equal(
    merged["params"]["head"]["kernel"], fresh["params"]["head"]["kernel"]
  )
  for layer in ("dense_0", "dense_1"):
    np.testing.assert_array_equal(
      merged["params"][layer]["kernel"], loaded["params"][layer]["kernel"]
    )
  assert "head" in report.summary()


def test_shape_mismatch_outside_the_head_lists_the_paths(tiny_run):
  workdir, _ = tiny_run
  with pytest.raises(ValueError) as info:
    finetune.merge_variables(_fresh(width=16), checkpoint.load_variables(workdir), HEAD)
  text = str(info.value)
  assert "params/dense_0/kernel" in text and "params/dense_1/kernel" in text
  assert "(64, 32)" in text and "(64, 16)" in text


def test_freeze_pattern_errors():
  params = _fresh()["params"]
  with pytest.raises(ValueError, match="matches no parameter"):
    finetune.apply_freeze(optax.sgd(0.1), params, "^nothing/")
  with pytest.raises(ValueError, match="matches every parameter"):
    finetune.apply_freeze(optax.sgd(0.1), params, ".")


def test_init_from_with_frozen_body_keeps_it_fixed(tiny_run_copy, tmp_path, capsys):
  source, _ = tiny_run_copy
  config = helpers.tiny_config(init_from=source, freeze="^dense_", num_train_steps=10)
  result = train_and_evaluate(config, str(tmp_path / "fine"))
  out = capsys.readouterr().out
  assert "init_from: loaded 6 arrays" in out and "kept fixed" in out
  before = helpers.final_params(source)
  after = helpers.final_params(str(tmp_path / "fine"))
  for key in ("params/dense_0/kernel", "params/dense_0/bias", "params/dense_1/kernel"):
    np.testing.assert_array_equal(before[key], after[key])
  assert not np.array_equal(before["params/head/kernel"], after["params/head/kernel"])
  # Resuming needs only the run's own checkpoints, not the pretrained source.
  shutil.rmtree(source)
  again = train_and_evaluate(config, str(tmp_path / "fine"))
  assert again["params_sha256"] == result["params_sha256"]


def test_init_from_missing_checkpoint_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="no checkpoint found"):
    train_and_evaluate(
      helpers.tiny_config(init_from=str(tmp_path / "nowhere")), str(tmp_path / "run")
    )


def test_init_layers_loads_only_the_first_layers(tiny_run):
  """The notes (001): initialize the first layers from a pretrained network, the rest fresh."""
  workdir, _ = tiny_run
  loaded, fresh = checkpoint.load_variables(workdir), _fresh()
  merged, report = finetune.merge_variables(fresh, loaded, HEAD, "^dense_0/")
  assert sorted(report.loaded) == ["params/dense_0/bias", "params/dense_0/kernel"]
  assert "params/dense_1/kernel" in report.skipped and "params/head/kernel" in report.skipped
  np.testing.assert_array_equal(
    merged["params"]["dense_0"]["kernel"], loaded["params"]["dense_0"]["kernel"]
  )
  for layer in ("dense_1", "head"):
    np.testing.assert_array_equal(
      merged["params"][layer]["kernel"], fresh["params"][layer]["kernel"]
    )
  assert "kept fresh outside init_layers" in report.summary()
  with pytest.raises(ValueError, match="init_layers='\\^conv' matches no parameter path"):
    finetune.merge_variables(fresh, loaded, HEAD, "^conv")


def test_init_layers_in_a_run(tiny_run_copy, tmp_path, capsys):
  source, _ = tiny_run_copy
  config = helpers.tiny_config(init_from=source, init_layers="^dense_0/", num_train_steps=10)
  train_and_evaluate(config, str(tmp_path / "first_layer"))
  assert "init_from: loaded 2 arrays" in capsys.readouterr().out
