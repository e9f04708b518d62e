"""Parity with optax's built-ins, and the rules inside jit, chain, inject_hyperparams,
multi_transform, pmap, on mixed pytrees, bfloat16 and zero gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import research.optim as ro

_RNG = np.random.default_rng(1)


def make_tree(dtype_b=np.float32):
  return {
      "w": jnp.asarray(_RNG.normal(size=(4, 3)).astype(np.float32)),
      "b": jnp.asarray(_RNG.normal(size=(3,)).astype(dtype_b)),
      "nested": {"s": jnp.asarray(np.float32(0.7))},
  }


PARAMS = make_tree()
GRADS = [jax.tree.map(lambda p, k=k: jnp.sin(p * (k + 1)) + 0.1 * k, PARAMS) for k in range(5)]

PAIRS = {
    "sgd": (lambda: ro.sgd(0.1), lambda: optax.sgd(0.1)),
    "heavy_ball": (lambda: ro.heavy_ball(0.1, 0.9), lambda: optax.sgd(0.1, momentum=0.9)),
    "nesterov": (lambda: ro.nesterov(0.1, 0.9),
                 lambda: optax.sgd(0.1, momentum=0.9, nesterov=True)),
    "adagrad": (lambda: ro.adagrad(0.1, 1e-7),
                lambda: optax.adagrad(0.1, initial_accumulator_value=0.0, eps=1e-7)),
    "rmsprop": (lambda: ro.rmsprop(0.01, 0.9, 1e-8), lambda: optax.rmsprop(0.01, 0.9, 1e-8)),
    "rmsprop_eps_outside": (lambda: ro.rmsprop(0.01, 0.9, 1e-3, eps_in_sqrt=False),
                            lambda: optax.rmsprop(0.01, 0.9, 1e-3, eps_in_sqrt=False)),
    "rmsprop_centered": (lambda: ro.rmsprop(0.01, 0.9, 1e-4, centered=True),
                         lambda: optax.rmsprop(0.01, 0.9, 1e-4, centered=True)),
    "rmsprop_nesterov": (lambda: ro.rmsprop(0.01, 0.9, 1e-8, momentum=0.8, nesterov=True),
                         lambda: optax.rmsprop(0.01, 0.9, 1e-8, momentum=0.8, nesterov=True)),
    "adadelta": (lambda: ro.adadelta(0.5, 0.9, 1e-6),
                 lambda: optax.adadelta(0.5, rho=0.9, eps=1e-6)),
    "adam": (lambda: ro.adam(1e-2), lambda: optax.adam(1e-2)),
    "adam_eps_root": (lambda: ro.adam(1e-2, 0.8, 0.99, 1e-6, 1e-8),
                      lambda: optax.adam(1e-2, 0.8, 0.99, 1e-6, 1e-8)),
}


def run(tx, grads=GRADS, params=PARAMS, jit=True):
  state = tx.init(params)
  update = jax.jit(tx.update) if jit else tx.update
  outputs = []
  for g in grads:
    updates, state = update(g, state, params)
    params = optax.apply_updates(params, updates)
    outputs.append(updates)
  return outputs, params, state


def assert_trees_close(a, b, rtol=1e-5, atol=1e-7):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(
      np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol), a, b)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_matches_optax_builtin(name):
  ours, theirs = PAIRS[name]
  assert_trees_close(run(ours())[0], run(theirs())[0])


@pytest.mark.parametrize("name", ["heavy_ball", "adam", "rmsprop_nesterov"])
def test_same_with_and_without_jit(name):
  assert_trees_close(run(PAIRS[name][0](), jit=True)[0], run(PAIRS[name][0](), jit=False)[0],
                     rtol=1e-6)


def test_inside_chain_with_clipping():
  ours = optax.chain(ro.clip_by_global_norm(0.5), ro.adam(1e-2))
  theirs = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(1e-2))
  assert_trees_close(run(ours)[0], run(theirs)[0])
  ours = optax.chain(ro.clip(0.3), ro.heavy_ball(0.1))
  theirs = optax.chain(optax.clip(0.3), optax.sgd(0.1, momentum=0.9))
  assert_trees_close(run(ours)[0], run(theirs)[0])


@pytest.mark.parametrize("factory,kwargs", [
    (ro.adam, {"learning_rate": 1e-2, "b1": 0.8}),
    (ro.heavy_ball, {"learning_rate": 0.1, "beta": 0.7}),
    (ro.nesterov, {"learning_rate": 0.1, "beta": 0.7}),
    (ro.rmsprop, {"learning_rate": 0.01, "decay": 0.8}),
    (ro.adagrad, {"learning_rate": 0.1}),
    (ro.adadelta, {"learning_rate": 0.5}),
    (ro.sgd, {"learning_rate": 0.1}),
])
def test_inject_hyperparams_gives_same_updates_and_can_change(factory, kwargs):
  injected = optax.inject_hyperparams(factory)(**kwargs)
  assert_trees_close(run(injected)[0], run(factory(**kwargs))[0], rtol=1e-6)
  # Changing the learning rate at run time changes the step, without re-tracing.
  state = injected.init(PARAMS)
  update = jax.jit(injected.update)
  first, _ = update(GRADS[0], state, PARAMS)
  state.hyperparams["learning_rate"] = jnp.zeros_like(state.hyperparams["learning_rate"])
  zero, _ = update(GRADS[0], state, PARAMS)
  assert update._cache_size() == 1
  assert all(float(jnp.max(jnp.abs(z))) == 0.0 for z in jax.tree.leaves(zero))
  assert any(float(jnp.max(jnp.abs(f))) > 0.0 for f in jax.tree.leaves(first))


def test_multi_transform_freezes_a_subtree():
  labels = {"w": "train", "b": "frozen", "nested": {"s": "train"}}
  tx = optax.multi_transform({"train": ro.adam(1e-2), "frozen": optax.set_to_zero()}, labels)
  updates, params, _ = run(tx)
  np.testing.assert_array_equal(np.asarray(params["b"]), np.asarray(PARAMS["b"]))
  assert float(jnp.max(jnp.abs(params["w"] - PARAMS["w"]))) > 0
  adam_only = run(ro.adam(1e-2), grads=[{"w": g["w"]} for g in GRADS], params={"w": PARAMS["w"]})
  assert_trees_close(updates[-1]["w"], adam_only[0][-1]["w"], rtol=1e-6)


@pytest.mark.parametrize("name", ["heavy_ball", "nesterov", "adagrad", "rmsprop", "adadelta",
                                  "adam"])
def test_bfloat16_params_float32_state(name):
  """State dtype policy: float32 accumulators for bfloat16 parameters; updates in bfloat16."""
  params = make_tree(dtype_b=jnp.bfloat16)
  grads = [jax.tree.map(lambda p: jnp.cos(p.astype(jnp.float32)).astype(p.dtype), params)] * 3
  tx = PAIRS[name][0]()
  updates, new_params, state = run(tx, grads=grads, params=params)
  assert updates[-1]["b"].dtype == jnp.bfloat16
  assert new_params["b"].dtype == jnp.bfloat16
  for leaf in jax.tree.leaves(state):
    if leaf.ndim == 1:  # the accumulators of "b"
      assert leaf.dtype == jnp.float32, (name, leaf.dtype)
  # The bfloat16 step equals the float32 step rounded to bfloat16.
  params32 = jax.tree.map(lambda p: p.astype(jnp.float32), params)
  grads32 = [jax.tree.map(lambda g: g.astype(jnp.float32), g) for g in grads]
  updates32 = run(PAIRS[name][0](), grads=grads32, params=params32)[0]
  np.testing.assert_allclose(np.asarray(updates[-1]["b"], np.float32),
                             np.asarray(updates32[-1]["b"]), rtol=1e-2, atol=1e-3)


def test_state_dtype_policy():
  assert ro.state_dtype(jnp.bfloat16) == jnp.float32
  assert ro.state_dtype(jnp.float16) == jnp.float32
  assert ro.state_dtype(jnp.float32) == jnp.float32


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_zero_gradients_give_zero_finite_updates(name):
  zeros = [jax.tree.map(jnp.zeros_like, PARAMS)] * 2
  updates, params, state = run(PAIRS[name][0](), grads=zeros)
  for leaf in jax.tree.leaves(updates):
    np.testing.assert_array_equal(np.asarray(leaf), 0.0)
  assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(state))


def test_no_recompile_on_second_call():
  tx = optax.chain(ro.clip_by_global_norm(1.0), ro.adam(1e-3))
  state = tx.init(PARAMS)

  @jax.jit
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  params, state = step(PARAMS, state, GRADS[0])
  params, state = step(params, state, GRADS[1])
  params, state = step(params, state, GRADS[2])
  assert step._cache_size() == 1


def test_pmap_data_parallel_matches_single_device():
  """Eight devices each hold a slice of the batch; pmean-ed gradients give the full-batch step."""
  n = jax.local_device_count()
  assert n == 8
  data = jnp.asarray(_RNG.normal(size=(n * 4, 3)).astype(np.float32))
  params = {"w": jnp.asarray([0.5, -0.2, 0.1], jnp.float32)}
  tx = optax.chain(ro.clip_by_global_norm(10.0), ro.rmsprop(0.01, momentum=0.9, nesterov=True))

  def loss(p, x):
    return jnp.mean((x @ p["w"] - 1.0) ** 2)

  def step(p, s, x):
    g = jax.lax.pmean(jax.grad(loss)(p, x), "batch")
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s

  replicate = lambda t: jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), t)
  p_rep, s_rep = replicate(params), replicate(tx.init(params))
  pstep = jax.pmap(step, axis_name="batch")
  p_single, s_single = params, tx.init(params)
  single = jax.jit(lambda p, s, x: _single_step(tx, loss, p, s, x))
  for _ in range(3):
    p_rep, s_rep = pstep(p_rep, s_rep, data.reshape(n, 4, 3))
    p_single, s_single = single(p_single, s_single, data)
  np.testing.assert_allclose(np.asarray(p_rep["w"]),
                             np.broadcast_to(np.asarray(p_single["w"]), (n, 3)), rtol=1e-5)


def _single_step(tx, loss, p, s, x):
  u, s = tx.update(jax.grad(loss)(p, x), s, p)
  return optax.apply_updates(p, u), s


def test_import_loads_no_heavy_framework():
  import subprocess
  import sys
  code = ("import sys, research.optim\n"
          "heavy = [m for m in ('flax', 'tensorflow', 'tensorflow_datasets') if m in sys.modules]\n"
          "assert not heavy, heavy\n")
  subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["heavy_ball", "nesterov", "adagrad", "rmsprop_centered",
                                  "rmsprop_nesterov", "adadelta", "adam"])
def test_packing_small_leaves_gives_the_same_updates(name):
  """Packed (default) and per-leaf state give the same steps, on small, large, bfloat16 and
  integer leaves together; the packed state holds one vector for the small leaves."""
  factory = {"heavy_ball": lambda p: ro.heavy_ball(0.1, 0.9, pack_small_leaves=p),
             "nesterov": lambda p: ro.nesterov(0.1, 0.9, pack_small_leaves=p),
             "adagrad": lambda p: ro.adagrad(0.1, pack_small_leaves=p),
             "rmsprop_centered": lambda p: ro.rmsprop(0.01, centered=True, pack_small_leaves=p),
             "rmsprop_nesterov": lambda p: ro.rmsprop(0.01, momentum=0.8, nesterov=True,
                                                      pack_small_leaves=p),
             "adadelta": lambda p: ro.adadelta(0.5, pack_small_leaves=p),
             "adam": lambda p: ro.adam(1e-2, pack_small_leaves=p)}[name]
  params = {"big": jnp.asarray(_RNG.normal(size=(130, 130)).astype(np.float32)),
            "small": jnp.asarray(_RNG.normal(size=(5, 3)).astype(np.float32)),
            "half": jnp.asarray(_RNG.normal(size=(4,)).astype(np.float32)).astype(jnp.bfloat16),
            "scalar": jnp.asarray(np.float32(0.3))}
  grads = [jax.tree.map(lambda p, k=k: jnp.cos(p * (k + 1)).astype(p.dtype), params)
           for k in range(4)]
  packed_updates, _, packed_state = run(factory(True), grads=grads, params=params)
  plain_updates, _, _ = run(factory(False), grads=grads, params=params)
  for a, b in zip(packed_updates, plain_updates, strict=True):
    # float32 leaves agree to rounding; the bfloat16 leaf to bfloat16 rounding (per leaf, the
    # update is rounded to bfloat16 between the stages of the chain; packed, only at the end).
    for key in ("big", "small", "scalar"):
      np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(a["half"], np.float32), np.asarray(b["half"], np.float32),
                               rtol=2e-2, atol=1e-3)
    assert jax.tree.map(lambda x: x.dtype, a) == jax.tree.map(lambda x: x.dtype, b)
  vectors = [x for x in jax.tree.leaves(packed_state) if x.ndim == 1]
  assert vectors and all(v.shape == (15 + 4 + 1,) and v.dtype == jnp.float32 for v in vectors)


def test_pack_tree_round_trip():
  tree = {"a": jnp.ones((3, 2)), "b": jnp.arange(4), "c": jnp.zeros((200, 100)),
          "d": jnp.ones((2,), jnp.bfloat16)}
  packed = ro.pack_tree(tree)
  assert packed["packed"].shape == (8,) and len(packed["large"]) == 2
  back = ro.unpack_tree(packed, tree)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)),
               back, tree)
  assert jax.tree.map(lambda x: x.dtype, back) == jax.tree.map(lambda x: x.dtype, tree)
