"""Data parallelism: the sharded gradient is the global-batch gradient; 1 and 8 devices agree."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from research import models
from research.train import parallel, steps, train_and_evaluate
from research.train import state as state_lib
from tests.train import helpers


def _setup(num_classes=3, batch=16):
  model = models.create(
    "mlp", num_classes=num_classes, depth=2, width=8, norm="batch", axis_name=parallel.AXIS
  )
  rng = np.random.default_rng(0)
  batch = {
    "image": rng.normal(size=(batch, 4, 4, 1)).astype(np.float32),
    "label": rng.integers(0, num_classes, size=(batch,)).astype(np.int32),
  }
  variables = state_lib.init_variables(model, jax.random.PRNGKey(0), (4, 4, 1))
  tx = optax.sgd(1.0)  # params_new = params - g, so the step exposes the gradient
  return model, tx, state_lib.create_train_state(variables, tx, None, jax.random.PRNGKey(1)), batch


def test_data_parallel_gradient_equals_global_batch_gradient():
  model, tx, state, batch = _setup()
  mesh = parallel.create_mesh()
  assert mesh.size == 8
  sharded = parallel.data_parallel_train_step(steps.make_train_step(model, tx), mesh)
  new_state, metrics = sharded(parallel.replicate(state, mesh), parallel.put_batch(batch, mesh))
  # One device, the whole batch, no named axis: BatchNorm sees all 16 rows at once.
  single = steps.make_train_step(model.clone(axis_name=None), tx, axis_name=None)
  ref_state, ref_metrics = jax.jit(single)(state, batch)
  grad = jax.tree.map(
    lambda a, b: np.asarray(a) - np.asarray(b), state.params, parallel.fetch(new_state.params)
  )
  ref_grad = jax.tree.map(
    lambda a, b: np.asarray(a) - np.asarray(b), state.params, ref_state.params
  )
  for g, r in zip(jax.tree.leaves(grad), jax.tree.leaves(ref_grad), strict=True):
    np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
  for a, b in zip(
    jax.tree.leaves(parallel.fetch(new_state.batch_stats)),
    jax.tree.leaves(ref_state.batch_stats),
    strict=True,
  ):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
    float(parallel.fetch(metrics)["loss"]), float(ref_metrics["loss"]), rtol=1e-6
  )
  assert int(parallel.fetch(new_state.step)) == 1


def test_donated_step_equals_the_plain_step_and_frees_the_old_state():
  model, tx, state, batch = _setup()
  mesh = parallel.create_mesh()
  train_step = steps.make_train_step(model, tx)
  plain = parallel.data_parallel_train_step(train_step, mesh)
  donated = parallel.data_parallel_train_step(train_step, mesh, donate=True)
  device_batch = parallel.put_batch(batch, mesh)
  before = jax.tree.map(np.array, state)  # host copies: replicate may share device 0's buffer
  ref_state, _ = plain(parallel.replicate(state, mesh), device_batch)
  old = parallel.replicate(before, mesh)
  kept = parallel.copy(old)  # what the loop hands the checkpoint Saver
  new_state, _ = donated(old, device_batch)
  assert all(x.is_deleted() for x in jax.tree.leaves(old.params))
  for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(ref_state), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # the copy has its own buffers: still readable, still the state before the step, replicated
  for a, b in zip(jax.tree.leaves(kept), jax.tree.leaves(before), strict=True):
    assert not a.is_deleted() and a.sharding == parallel.replicated(mesh)
    np.testing.assert_array_equal(np.asarray(a), b)


def test_dropout_key_differs_per_device_and_step():
  state = state_lib.TrainState(
    step=jnp.int32(3),
    params={},
    batch_stats={},
    opt_state=(),
    plateau=(),
    rng=jax.random.PRNGKey(0),
  )
  mesh = parallel.create_mesh()
  keys = jax.jit(
    jax.shard_map(
      lambda s, x: steps.step_rng(s, parallel.AXIS)[None],
      mesh=mesh,
      in_specs=(jax.sharding.PartitionSpec(), jax.sharding.PartitionSpec(parallel.AXIS)),
      out_specs=jax.sharding.PartitionSpec(parallel.AXIS),
      check_vma=False,
    )
  )(state, jnp.zeros(8))
  keys = np.asarray(keys)
  assert len({tuple(k) for k in keys}) == 8
  other_step = np.asarray(steps.step_rng(state.replace(step=jnp.int32(4)), None))
  assert not np.array_equal(np.asarray(steps.step_rng(state, None)), other_step)


def test_one_and_eight_devices_end_with_the_same_parameters(tmp_path):
  # BatchNorm in the model, so the cross-device statistics are part of what must agree. SGD
  # rather than Adam: the bias before a BatchNorm has a zero gradient, and Adam would blow its
  # float noise up to steps of size lr. No dropout: each device draws its own mask (the key is
  # folded with the device index), so masks depend on the device count.
  config = dict(
    num_train_steps=10,
    **{
      "model.norm": "batch",
      "model.dropout_rate": 0.0,
      "optimizer.name": "sgd",
      "optimizer.learning_rate": 0.1,
    },
  )
  one = train_and_evaluate(helpers.tiny_config(num_devices=1, **config), str(tmp_path / "one"))
  eight = train_and_evaluate(helpers.tiny_config(**config), str(tmp_path / "eight"))
  a, b = helpers.final_params(str(tmp_path / "one")), helpers.final_params(str(tmp_path / "eight"))
  assert sorted(a) == sorted(b) and any("batch_stats" in k for k in a)
  for key in a:
    np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)
  assert one["validation_accuracy"] == pytest.approx(eight["validation_accuracy"], abs=1e-6)
  assert one["test_accuracy"] == pytest.approx(eight["test_accuracy"], abs=1e-6)


def test_mesh_subset_errors():
  with pytest.raises(ValueError, match="num_devices=9"):
    parallel.create_mesh(9)
