"""The engine: K steps per dispatch, the split in device memory or fed by the host pipeline."""

import jax
import numpy as np
import pytest

from research.train import loop, train_and_evaluate
from tests.train import helpers

SETTINGS = ("true", "false")


@pytest.mark.parametrize("in_memory", SETTINGS)
def test_steps_per_dispatch_does_not_change_the_result(in_memory, tmp_path):
  runs = {}
  for k in (1, 8):
    config = helpers.tiny_config(steps_per_dispatch=k, **{"dataset.in_memory": in_memory})
    runs[k] = train_and_evaluate(config, str(tmp_path / f"k{k}"))
  assert runs[1]["input"] == ("memory" if in_memory == "true" else "host")
  assert runs[1]["params_sha256"] == runs[8]["params_sha256"]
  for key in ("validation_loss", "test_loss", "final_test_loss"):
    assert runs[1][key] == runs[8][key]
  helpers.assert_bitwise_equal(
    helpers.final_params(str(tmp_path / "k1")), helpers.final_params(str(tmp_path / "k8"))
  )


@pytest.mark.parametrize("in_memory", SETTINGS)
def test_resume_is_bit_identical(in_memory, tmp_path):
  overrides = {"dataset.in_memory": in_memory, "num_train_steps": 30}
  whole = train_and_evaluate(helpers.tiny_config(**overrides), str(tmp_path / "whole"))
  parts = str(tmp_path / "parts")
  train_and_evaluate(helpers.tiny_config(**{**overrides, "num_train_steps": 10}), parts)
  resumed = train_and_evaluate(helpers.tiny_config(**overrides, steps_per_dispatch=3), parts)
  assert resumed["params_sha256"] == whole["params_sha256"]


@pytest.mark.parametrize("in_memory", SETTINGS)
def test_one_and_eight_devices_agree(in_memory, tmp_path):
  config = dict(
    num_train_steps=10,
    **{
      "model.norm": "batch",
      "model.dropout_rate": 0.0,
      "optimizer.name": "sgd",
      "optimizer.learning_rate": 0.1,
      "dataset.in_memory": in_memory,
      "dataset.augment": "flip",
    },
  )
  train_and_evaluate(helpers.tiny_config(num_devices=1, **config), str(tmp_path / "one"))
  train_and_evaluate(helpers.tiny_config(**config), str(tmp_path / "eight"))
  a, b = helpers.final_params(str(tmp_path / "one")), helpers.final_params(str(tmp_path / "eight"))
  for key in a:
    np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_memory_and_host_feeds_see_every_example_once_per_epoch(tmp_path):
  """Both feeds train as many steps on as many distinct examples; they differ only in order."""
  memory = train_and_evaluate(
    helpers.tiny_config(**{"dataset.in_memory": True}), str(tmp_path / "memory")
  )
  host = train_and_evaluate(
    helpers.tiny_config(**{"dataset.in_memory": False}), str(tmp_path / "host")
  )
  assert memory["input"] == "memory" and host["input"] == "host"
  assert memory["step"] == host["step"] == 20
  assert memory["params_sha256"] != host["params_sha256"]  # other orders and augment keys


def test_in_memory_over_budget_is_an_error_and_auto_falls_back(tmp_path):
  config = helpers.tiny_config(**{"dataset.in_memory": True, "dataset.in_memory_limit_mb": 0.01})
  with pytest.raises(
    ValueError,
    match=r"needs 0\.\d+ MB per device .* over "
    r"dataset\.in_memory_limit_mb=0\.01",
  ):
    train_and_evaluate(config, str(tmp_path / "refused"))
  assert not (tmp_path / "refused").exists()
  auto = helpers.tiny_config(**{"dataset.in_memory_limit_mb": 0.01})
  assert train_and_evaluate(auto, str(tmp_path / "auto"))["input"] == "host"


def test_bad_in_memory_value_is_an_error(tmp_path):
  with pytest.raises(ValueError, match=r"dataset\.in_memory='sometimes' must be 'auto', True"):
    train_and_evaluate(
      helpers.tiny_config(**{"dataset.in_memory": "sometimes"}), str(tmp_path / "bad")
    )
  with pytest.raises(ValueError, match="steps_per_dispatch=0 must be a positive integer"):
    train_and_evaluate(helpers.tiny_config(steps_per_dispatch=0), str(tmp_path / "bad"))


def test_dispatch_interval_is_the_gcd_of_the_intervals():
  config = helpers.tiny_config(
    steps_per_dispatch=100, log_every_steps=30, eval_every_steps=60, checkpoint_every_steps=90
  )
  assert loop.dispatch_interval(config) == 10


def _conv_setup():
  import flax.linen as nn
  import jax.numpy as jnp

  from research import data, optim
  from research.train import engine, parallel, steps
  from research.train import state as state_lib

  class TinyCNN(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
      x = nn.relu(nn.Conv(4, (3, 3))(x))
      return nn.Dense(10)(x.mean(axis=(1, 2)))

  images, labels = data.load_split("digits", "train", stop=256)
  mesh = parallel.create_mesh(1)
  model, tx = TinyCNN(), optim.sgd(0.1)
  variables = jax.tree.map(np.asarray, model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1))))

  def run(loop, dispatch_lengths):
    state = parallel.replicate(
      state_lib.create_train_state(variables, tx, None, jax.random.PRNGKey(1)), mesh
    )
    dispatch = engine.make_train_dispatch(
      steps.make_train_step(model, tx),
      mesh,
      global_batch_size=32,
      feed="memory",
      num_examples=len(images),
      augment="crop_flip",
      loop=loop,
    )
    split = engine.put_split(images, labels, mesh, seed=0)
    total = 0
    for n in dispatch_lengths:
      state, out = dispatch(state, split, np.int32(n))
      total += int(out["steps"])
    return dispatch.loop, total, jax.tree.map(np.asarray, state.params)

  return run


def _flat(params) -> dict:
  return {str(i): np.asarray(x) for i, x in enumerate(jax.tree.leaves(params))}


def test_convolutions_on_cpu_run_one_step_per_call_and_k_does_not_matter():
  run = _conv_setup()
  loop, total, one = run("auto", [1] * 6)
  assert loop == "calls" and total == 6  # XLA:CPU: convolutions stay out of loop bodies
  _, _, three = run("auto", [3, 3])
  helpers.assert_bitwise_equal(_flat(one), _flat(three))
  loop, total, looped = run("while", [6])
  assert loop == "while" and total == 6
  for key, value in _flat(one).items():
    np.testing.assert_allclose(value, _flat(looped)[key], rtol=1e-4, atol=1e-6)


def test_the_main_job_reaches_97_percent(tmp_path):
  """The README's first command's config, as a user runs it on one device."""
  from experiments.configs import mlp_digits

  config = mlp_digits.get_config()
  config.num_devices, config.progress_bar, config.tensorboard = 1, False, False
  result = train_and_evaluate(config, str(tmp_path / "main_job"))
  assert result["input"] == "memory" and result["step"] == 600
  assert result["num_examples"] == {"train": 1150, "validation": 287, "test": 360}
  assert result["test_accuracy"] >= 0.97, result
