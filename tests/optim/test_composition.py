"""Parity with optax's built-ins, and the rules inside jit, chain, inject_hyperparams,
multi_transform, pmap, on mixed pytrees, bfloat16 and zero gradients."""

import inspect

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
  "nesterov": (lambda: ro.nesterov(0.1, 0.9), lambda: optax.sgd(0.1, momentum=0.9, nesterov=True)),
  "sgd_momentum": (lambda: ro.sgd(0.1, 0.9), lambda: optax.sgd(0.1, 0.9)),
  "sgd_nesterov": (lambda: ro.sgd(0.1, 0.9, True), lambda: optax.sgd(0.1, 0.9, True)),
  "adagrad": (lambda: ro.adagrad(0.1), lambda: optax.adagrad(0.1)),
  "adagrad_lecture": (
    lambda: ro.adagrad(0.1, initial_accumulator_value=0.0, eps=1e-8),
    lambda: optax.adagrad(0.1, initial_accumulator_value=0.0, eps=1e-8),
  ),
  "rmsprop": (lambda: ro.rmsprop(0.01, 0.9, 1e-8), lambda: optax.rmsprop(0.01, 0.9, 1e-8)),
  "rmsprop_eps_outside": (
    lambda: ro.rmsprop(0.01, 0.9, 1e-3, eps_in_sqrt=False),
    lambda: optax.rmsprop(0.01, 0.9, 1e-3, eps_in_sqrt=False),
  ),
  "rmsprop_centered": (
    lambda: ro.rmsprop(0.01, 0.9, 1e-4, centered=True),
    lambda: optax.rmsprop(0.01, 0.9, 1e-4, centered=True),
  ),
  "rmsprop_nesterov": (
    lambda: ro.rmsprop(0.01, 0.9, 1e-8, momentum=0.8, nesterov=True),
    lambda: optax.rmsprop(0.01, 0.9, 1e-8, momentum=0.8, nesterov=True),
  ),
  "rmsprop_bias_corrected": (
    lambda: ro.rmsprop(0.01, 0.9, 1e-4, 0.5, False, True, 0.8, bias_correction=True),
    lambda: optax.rmsprop(0.01, 0.9, 1e-4, 0.5, False, True, 0.8, bias_correction=True),
  ),
  "adadelta": (lambda: ro.adadelta(0.5, 0.9, 1e-6), lambda: optax.adadelta(0.5, rho=0.9, eps=1e-6)),
  "adadelta_weight_decay": (
    lambda: ro.adadelta(
      0.5, weight_decay=0.1, weight_decay_mask={"w": True, "b": False, "nested": {"s": True}}
    ),
    lambda: optax.adadelta(
      0.5, weight_decay=0.1, weight_decay_mask={"w": True, "b": False, "nested": {"s": True}}
    ),
  ),
  "adam": (lambda: ro.adam(1e-2), lambda: optax.adam(1e-2)),
  "adam_eps_root": (
    lambda: ro.adam(1e-2, 0.8, 0.99, 1e-6, 1e-8),
    lambda: optax.adam(1e-2, 0.8, 0.99, 1e-6, 1e-8),
  ),
  "adam_nesterov": (lambda: ro.adam(1e-2, nesterov=True), lambda: optax.nadam(1e-2)),
  "adam_schedule": (
    lambda: ro.adam(optax.linear_schedule(1e-2, 1e-3, 4), mu_dtype=jnp.float32),
    lambda: optax.adam(optax.linear_schedule(1e-2, 1e-3, 4), mu_dtype=jnp.float32),
  ),
}
# The optax aliases whose state layout ours reproduces exactly (same tree structure).
SAME_LAYOUT = sorted(name for name in PAIRS if not name.startswith(("heavy_ball", "nesterov")))


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
  jax.tree.map(
    lambda x, y: np.testing.assert_allclose(
      np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol
    ),
    a,
    b,
  )


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_matches_optax_builtin(name):
  ours, theirs = PAIRS[name]
  assert_trees_close(run(ours())[0], run(theirs())[0])


@pytest.mark.parametrize("name", SAME_LAYOUT)
def test_state_layout_is_optax_layout(name):
  """Same tree structure (NamedTuple types included), shapes and dtypes as optax's state, before
  and after a step, so optax's state tools, checkpoints and tree maps treat both alike."""
  ours, theirs = PAIRS[name]
  for s_ours, s_theirs in (
    (ours().init(PARAMS), theirs().init(PARAMS)),
    (run(ours())[2], run(theirs())[2]),
  ):
    assert jax.tree.structure(s_ours) == jax.tree.structure(s_theirs)
    assert jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), s_ours) == jax.tree.map(
      lambda x: (jnp.shape(x), jnp.result_type(x)), s_theirs
    )
  for key in ("count", "mu", "nu", "trace"):
    found = lambda state, key=key: len(optax.tree.get_all_with_path(state, key))
    assert found(ours().init(PARAMS)) == found(theirs().init(PARAMS)), key


def test_same_named_factories_take_optax_signatures():
  """Every factory sharing a name with optax's has its parameters: names, order, kinds,
  defaults (extra keyword-only parameters would be allowed, none exist)."""
  names = [
    n
    for n in ro.__all__
    if hasattr(optax, n) and callable(getattr(ro, n)) and not isinstance(getattr(ro, n), type)
  ]
  assert {
    "sgd",
    "adam",
    "rmsprop",
    "adagrad",
    "adadelta",
    "clip",
    "clip_by_global_norm",
    "global_norm",
    "trace",
    "scale_by_adam",
    "scale_by_rms",
    "scale_by_stddev",
    "scale_by_adadelta",
    "scale_by_learning_rate",
  } <= set(names)
  for name in names:
    ours = inspect.signature(getattr(ro, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    assert [(p.name, p.kind, p.default) for p in theirs.values()] == [
      (p.name, p.kind, p.default) for p in ours.values()
    ][: len(theirs)], name
    assert all(p.kind == p.KEYWORD_ONLY for p in list(ours.values())[len(theirs) :]), name


@pytest.mark.parametrize(
  "factory",
  [
    lambda: ro.sgd(0.1, 0.9),
    lambda: ro.adam(0.1),
    lambda: ro.rmsprop(0.1, centered=True),
    lambda: ro.adagrad(0.1),
    lambda: ro.adadelta(0.1),
    lambda: ro.heavy_ball(0.1),
    lambda: ro.clip_by_global_norm(1.0),
  ],
)
def test_extra_args_abstract_init_and_python_scalars(factory):
  """`update(..., value=...)` works; `init` works on ShapeDtypeStructs under `jax.eval_shape`
  and gives the state `init` gives on arrays; Python scalars work as parameters."""
  tx = factory()
  state = tx.init(PARAMS)
  tx.update(GRADS[0], state, PARAMS, value=1.0, unexpected_argument=2)
  abstract = jax.eval_shape(
    tx.init, jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), PARAMS)
  )
  assert jax.tree.map(lambda x: (x.shape, x.dtype), abstract) == jax.tree.map(
    lambda x: (x.shape, x.dtype), state
  )
  scalars = {"x": 1.5, "y": 2}
  updates, _ = tx.update({"x": 0.5, "y": 1.0}, tx.init(scalars), scalars)
  assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("name", ["adam", "sgd_momentum", "rmsprop_centered", "adagrad"])
def test_complex_parameters_reach_a_complex_minimum(name):
  """|x - (1 + 1j)|^2 with conjugated gradients, as optax's tests drive complex parameters;
  squares are g conj(g) (with g * g, adam would end near 1 - 2.67j)."""
  target = jnp.asarray([1.0 + 1.0j, -1.0 + 1.0j], jnp.complex64)
  tx = {
    "adam": lambda: ro.adam(0.05),
    "sgd_momentum": lambda: ro.sgd(0.02, 0.9),
    "rmsprop_centered": lambda: ro.rmsprop(0.01, centered=True),
    "adagrad": lambda: ro.adagrad(0.5),
  }[name]()
  params = jnp.zeros(2, jnp.complex64)
  state = tx.init(params)

  @jax.jit
  def step(params, state):
    grad = jnp.conj(jax.grad(lambda x: jnp.sum(jnp.abs(x - target) ** 2))(params))
    updates, state = tx.update(grad, state, params)
    return optax.apply_updates(params, updates), state

  for _ in range(2000):
    params, state = step(params, state)
  np.testing.assert_allclose(np.asarray(params), np.asarray(target), atol=2e-2)
  assert ro.global_norm({"z": jnp.asarray([3.0 + 4.0j])}) == pytest.approx(5.0)


def test_explicit_sharding_state_sharded_like_params():
  """With an explicit mesh, `init` creates each accumulator with its parameter's sharding, and
  `update` keeps it (the state's types before and after a step are equal)."""
  mesh = jax.make_mesh((8,), ("x",), axis_types=(jax.sharding.AxisType.Explicit,))
  sharding = jax.sharding.NamedSharding(mesh, jax.P(None, "x"))
  with jax.set_mesh(mesh):
    params = {"w": jnp.ones((2, 8, 4), jnp.float32, out_sharding=sharding)}
    for tx in (ro.adam(0.1), ro.sgd(0.1, 0.9), ro.rmsprop(0.1, centered=True), ro.adagrad(0.1)):
      state0 = tx.init(params)
      _, state1 = jax.jit(tx.update)(params, state0, params)
      types0, types1 = jax.tree.map(jax.typeof, state0), jax.tree.map(jax.typeof, state1)
      assert types0 == types1
      assert any("x" in str(t.sharding.spec) for t in jax.tree.leaves(types0))


@pytest.mark.parametrize("name", ["heavy_ball", "adam", "rmsprop_nesterov"])
def test_same_with_and_without_jit(name):
  assert_trees_close(
    run(PAIRS[name][0](), jit=True)[0], run(PAIRS[name][0](), jit=False)[0], rtol=1e-6
  )


def test_inside_chain_with_clipping():
  ours = optax.chain(ro.clip_by_global_norm(0.5), ro.adam(1e-2))
  theirs = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(1e-2))
  assert_trees_close(run(ours)[0], run(theirs)[0])
  ours = optax.chain(ro.clip(0.3), ro.heavy_ball(0.1))
  theirs = optax.chain(optax.clip(0.3), optax.sgd(0.1, momentum=0.9))
  assert_trees_close(run(ours)[0], run(theirs)[0])


@pytest.mark.parametrize(
  "factory,kwargs",
  [
    (ro.adam, {"learning_rate": 1e-2, "b1": 0.8}),
    (ro.heavy_ball, {"learning_rate": 0.1, "beta": 0.7}),
    (ro.nesterov, {"learning_rate": 0.1, "beta": 0.7}),
    (ro.rmsprop, {"learning_rate": 0.01, "decay": 0.8}),
    (ro.adagrad, {"learning_rate": 0.1}),
    (ro.adadelta, {"learning_rate": 0.5}),
    (ro.sgd, {"learning_rate": 0.1}),
  ],
)
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


@pytest.mark.parametrize(
  "name", ["heavy_ball", "nesterov", "adagrad", "rmsprop", "adadelta", "adam"]
)
def test_bfloat16_params(name):
  """State dtype policy (optax's): accumulators in the parameters' dtype, updates in the
  gradients' dtype; the bfloat16 step is close to the float32 step."""
  params = make_tree(dtype_b=jnp.bfloat16)
  grads = [jax.tree.map(lambda p: jnp.cos(p.astype(jnp.float32)).astype(p.dtype), params)] * 3
  tx = PAIRS[name][0]()
  updates, new_params, state = run(tx, grads=grads, params=params)
  assert updates[-1]["b"].dtype == jnp.bfloat16
  assert new_params["b"].dtype == jnp.bfloat16
  for leaf in jax.tree.leaves(state):
    if leaf.ndim == 1:  # the accumulators of "b"
      assert leaf.dtype == jnp.bfloat16, (name, leaf.dtype)
  params32 = jax.tree.map(lambda p: p.astype(jnp.float32), params)
  grads32 = [jax.tree.map(lambda g: g.astype(jnp.float32), g) for g in grads]
  updates32 = run(PAIRS[name][0](), grads=grads32, params=params32)[0]
  np.testing.assert_allclose(
    np.asarray(updates[-1]["b"], np.float32), np.asarray(updates32[-1]["b"]), rtol=3e-2, atol=3e-3
  )


def test_float32_accumulators_for_bfloat16_params_on_request():
  params = {"b": jnp.ones(3, jnp.bfloat16)}
  for tx, field in (
    (ro.adam(0.1, mu_dtype=jnp.float32), "mu"),
    (ro.sgd(0.1, 0.9, accumulator_dtype=jnp.float32), "trace"),
    (ro.heavy_ball(0.1, accumulator_dtype=jnp.float32), "trace"),
  ):
    state = tx.init(params)
    assert optax.tree.get(state, field)["b"].dtype == jnp.float32
    updates, new_state = tx.update(params, state, params)
    assert updates["b"].dtype == jnp.bfloat16
    assert optax.tree.get(new_state, field)["b"].dtype == jnp.float32


@pytest.mark.parametrize("name", sorted(n for n in PAIRS if "weight_decay" not in n))
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
  np.testing.assert_allclose(
    np.asarray(p_rep["w"]), np.broadcast_to(np.asarray(p_single["w"]), (n, 3)), rtol=1e-5
  )


def _single_step(tx, loss, p, s, x):
  u, s = tx.update(jax.grad(loss)(p, x), s, p)
  return optax.apply_updates(p, u), s


def test_import_loads_no_heavy_framework():
  import subprocess
  import sys

  code = (
    "import sys, research.optim\n"
    "heavy = [m for m in ('flax', 'tensorflow', 'tensorflow_datasets') if m in sys.modules]\n"
    "assert not heavy, heavy\n"
  )
  subprocess.run([sys.executable, "-c", code], check=True)


WRAPPED_RULES = {
  "heavy_ball": lambda: ro.heavy_ball(0.1, 0.9),
  "nesterov": lambda: ro.nesterov(0.1, 0.9),
  "sgd_nesterov": lambda: ro.sgd(0.1, 0.9, nesterov=True),
  "adagrad": lambda: ro.adagrad(0.1),
  "rmsprop_centered": lambda: ro.rmsprop(0.01, centered=True),
  "rmsprop_nesterov": lambda: ro.rmsprop(0.01, momentum=0.8, nesterov=True),
  "adadelta": lambda: ro.adadelta(0.5),
  "adam": lambda: ro.adam(1e-2),
  "clipped_adam": lambda: optax.chain(ro.clip_by_global_norm(0.5), ro.adam(1e-2)),
}


@pytest.mark.parametrize("wrapper", [ro.pack_small_leaves, ro.flatten_leaves])
@pytest.mark.parametrize("name", sorted(WRAPPED_RULES))
def test_packed_and_flattened_rules_give_the_same_updates(name, wrapper):
  """A rule on packed (small leaves) or flattened (all leaves) buffers gives the per-leaf
  updates, on small, large, bfloat16, scalar and integer leaves together; the state holds one
  vector per dtype for the grouped leaves."""
  params = {
    "big": jnp.asarray(_RNG.normal(size=(130, 130)).astype(np.float32)),
    "small": jnp.asarray(_RNG.normal(size=(5, 3)).astype(np.float32)),
    "half": jnp.asarray(_RNG.normal(size=(4,)).astype(np.float32)).astype(jnp.bfloat16),
    "scalar": jnp.asarray(np.float32(0.3)),
    "steps": jnp.asarray(3, jnp.int32),
  }
  grads = [
    jax.tree.map(lambda p, k=k: jnp.cos(p * (k + 1)).astype(p.dtype), params) for k in range(4)
  ]
  grads = [{**g, "steps": jnp.zeros((), jnp.int32)} for g in grads]
  float_params = {k: v for k, v in params.items() if k != "steps"}
  float_grads = [{k: v for k, v in g.items() if k != "steps"} for g in grads]
  wrapped_updates, _, wrapped_state = run(
    wrapper(WRAPPED_RULES[name]()), grads=float_grads, params=float_params
  )
  plain_updates, _, _ = run(WRAPPED_RULES[name](), grads=float_grads, params=float_params)
  for a, b in zip(wrapped_updates, plain_updates, strict=True):
    for key in a:
      np.testing.assert_allclose(
        np.asarray(a[key], np.float32),
        np.asarray(b[key], np.float32),
        rtol=1e-6,
        atol=1e-7,
        err_msg=key,
      )
    assert jax.tree.map(lambda x: x.dtype, a) == jax.tree.map(lambda x: x.dtype, b)
  buffers = {(15 + 1, jnp.dtype(jnp.float32)), (4, jnp.dtype(jnp.bfloat16))}
  if wrapper is ro.flatten_leaves:  # large leaves go into buffers of their own
    buffers.add((130 * 130, jnp.dtype(jnp.float32)))
  vectors = [x for x in jax.tree.leaves(wrapped_state) if x.ndim == 1]
  assert {(v.shape[0], v.dtype) for v in vectors} == buffers
  # Integer leaves stay leaves of their own.
  tx = wrapper(ro.sgd(0.1))
  updates, _ = tx.update(grads[0], tx.init(params), params)
  assert updates["steps"].dtype == jnp.int32


def test_nesterov_position_through_the_wrappers():
  params = {"a": jnp.ones((200, 100)), "b": jnp.ones(3)}
  grads = {"a": jnp.full((200, 100), 0.5), "b": jnp.asarray([1.0, -2.0, 0.5])}
  plain = ro.nesterov(0.1, 0.9)
  _, plain_state = plain.update(grads, plain.init(params), params)
  expected = ro.nesterov_position(params, plain_state, 0.9)
  for wrapper, size in ((ro.pack_small_leaves, ro.PACK_MAX_LEAF_SIZE), (ro.flatten_leaves, None)):
    tx = wrapper(ro.nesterov(0.1, 0.9))
    _, state = tx.update(grads, tx.init(params), params)
    got = ro.nesterov_position(params, state, 0.9, max_leaf_size=size)
    jax.tree.map(
      lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y)), got, expected
    )


def test_pack_tree_round_trip():
  tree = {
    "a": jnp.ones((3, 2)),
    "b": jnp.arange(4),
    "c": jnp.zeros((200, 100)),
    "d": jnp.ones((2,), jnp.bfloat16),
  }
  packed = ro.pack_tree(tree)
  assert {k: v.shape for k, v in packed["flat"].items()} == {"float32": (6,), "bfloat16": (2,)}
  assert len(packed["other"]) == 2
  back = ro.unpack_tree(packed, tree)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), back, tree)
  assert jax.tree.map(lambda x: x.dtype, back) == jax.tree.map(lambda x: x.dtype, tree)
  flat = ro.pack_tree(tree, None)
  assert {k: v.shape for k, v in flat["flat"].items()} == {
    "float32": (6,),
    "float32.large": (20000,),
    "bfloat16": (2,),
  }
  assert len(flat["other"]) == 1
  chunked = ro.pack_tree(
    {"a": jnp.ones((300, 100)), "b": jnp.ones((200, 100))}, None, max_buffer_size=40000
  )
  assert {k: v.shape for k, v in chunked["flat"].items()} == {
    "float32.large": (30000,),
    "float32.large.1": (20000,),
  }
  back = ro.unpack_tree(
    chunked, {"a": jnp.ones((300, 100)), "b": jnp.ones((200, 100))}, None, max_buffer_size=40000
  )
  assert back["a"].shape == (300, 100) and float(back["b"].sum()) == 20000.0
