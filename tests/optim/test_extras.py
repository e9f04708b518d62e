"""Weight decay, skipping non-finite steps, schedules, reduce-on-plateau, Armijo, Newton."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import research.optim as ro
from tests.optim.test_rules import X0, A, B, grad_jnp, grad_np, run_ours


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


def test_l2_penalty_and_l1_penalty_references(x64):
  eta, alpha = 0.1, 0.3
  ours, _ = run_ours(optax.chain(ro.add_l2_penalty(alpha), ro.sgd(eta)), steps=5)
  x = X0
  for k in range(5):
    x = x - eta * (grad_np(x) + alpha * x)
    np.testing.assert_allclose(ours[k + 1], x, rtol=1e-12)
  ours, _ = run_ours(optax.chain(ro.add_l1_penalty(alpha), ro.sgd(eta)), steps=5)
  x = X0
  for k in range(5):
    x = x - eta * (grad_np(x) + alpha * np.sign(x))
    np.testing.assert_allclose(ours[k + 1], x, rtol=1e-12)


def test_decoupled_decay_multiplies_by_w(x64):
  """X <- w X + u with w = 1 - r (the student notes' 'multiply every parameter by w < 1')."""
  rate = 0.2
  tx = ro.decoupled_weight_decay(rate)
  params = jnp.asarray(X0)
  updates, _ = tx.update(jnp.zeros_like(params), tx.init(params), params)
  np.testing.assert_allclose(
    np.asarray(optax.apply_updates(params, updates)), (1 - rate) * X0, rtol=1e-14
  )


def test_l2_and_decoupled_decay_coincide_for_sgd_when_rate_is_eta_alpha(x64):
  eta, alpha = 0.1, 0.5
  l2, _ = run_ours(optax.chain(ro.add_l2_penalty(alpha), ro.sgd(eta)))
  decoupled, _ = run_ours(optax.chain(ro.sgd(eta), ro.decoupled_weight_decay(eta * alpha)))
  for a, b in zip(l2, decoupled, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
  # With momentum the L2 term is accumulated in the velocity, decoupled decay is not.
  l2, _ = run_ours(optax.chain(ro.add_l2_penalty(alpha), ro.heavy_ball(eta, 0.9)))
  decoupled, _ = run_ours(
    optax.chain(ro.heavy_ball(eta, 0.9), ro.decoupled_weight_decay(eta * alpha))
  )
  assert np.max(np.abs(l2[-1] - decoupled[-1])) > 1e-3


def test_penalties_need_params():
  tx = ro.add_l2_penalty(0.1)
  with pytest.raises(ValueError, match="params=None"):
    tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


def test_skip_nonfinite_skips_counts_and_continues():
  tx = ro.skip_nonfinite(optax.chain(ro.clip_by_global_norm(1.0), ro.adam(0.1)))
  params = {"a": jnp.ones(3), "b": jnp.ones((2, 2), jnp.bfloat16)}
  good = jax.tree.map(lambda p: 0.5 * jnp.ones_like(p), params)
  bad = {"a": jnp.asarray([1.0, jnp.nan, 0.0]), "b": good["b"]}
  inf = {"a": good["a"], "b": jnp.full((2, 2), jnp.inf, jnp.bfloat16)}
  update = jax.jit(tx.update)
  state = tx.init(params)
  u1, state = update(good, state, params)
  params1 = optax.apply_updates(params, u1)
  for bad_grads in (bad, inf):
    inner_before = state.inner_state
    u, state = update(bad_grads, state, params1)
    assert bool(state.last_skipped)
    assert all(float(jnp.max(jnp.abs(x))) == 0.0 for x in jax.tree.leaves(u))
    jax.tree.map(
      lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)),
      state.inner_state,
      inner_before,
    )
  assert int(state.num_skipped) == 2
  u2, state = update(good, state, params1)
  assert not bool(state.last_skipped)
  assert int(state.num_skipped) == 2
  # Training went on as if the bad steps had not happened.
  reference = optax.chain(ro.clip_by_global_norm(1.0), ro.adam(0.1))
  ref_state = reference.init(params)
  _, ref_state = reference.update(good, ref_state, params)
  ref_u2, _ = reference.update(good, ref_state, params1)
  jax.tree.map(
    lambda x, y: np.testing.assert_allclose(
      np.asarray(x, np.float32), np.asarray(y, np.float32), rtol=1e-6
    ),
    u2,
    ref_u2,
  )
  assert update._cache_size() == 1


def test_schedules_follow_their_formulas():
  steps = np.arange(0, 50)
  inverse = ro.inverse_time_decay(0.5, 0.1)
  np.testing.assert_allclose([float(inverse(k)) for k in steps], 0.5 / (1 + 0.1 * steps), rtol=1e-6)
  linear = ro.linear_decay_then_constant(1.0, 0.01, tau=20)
  expected = np.where(steps <= 20, (1 - steps / 20) * 1.0 + steps / 20 * 0.01, 0.01)
  np.testing.assert_allclose([float(linear(k)) for k in steps], expected, rtol=1e-6)
  stepped = ro.step_decay(0.1, [10, 30], factor=0.5)
  expected = 0.1 * 0.5 ** ((steps >= 10).astype(int) + (steps >= 30).astype(int))
  np.testing.assert_allclose([float(stepped(k)) for k in steps], expected, rtol=1e-6)
  np.testing.assert_allclose(float(jax.jit(stepped)(jnp.asarray(31))), 0.025, rtol=1e-6)


def test_schedule_drives_our_rules_like_optax():
  schedule = ro.inverse_time_decay(0.1, 0.5)
  params = {"w": jnp.asarray([1.0, -2.0, 3.0])}
  grads = [{"w": jnp.asarray([0.3, -0.1, 0.2]) * (k + 1)} for k in range(4)]
  for ours, theirs in (
    (ro.adam(schedule), optax.adam(schedule)),
    (ro.sgd(schedule), optax.sgd(schedule)),
  ):
    s1, s2 = ours.init(params), theirs.init(params)
    for g in grads:
      u1, s1 = ours.update(g, s1, params)
      u2, s2 = theirs.update(g, s2, params)
      np.testing.assert_allclose(np.asarray(u1["w"]), np.asarray(u2["w"]), rtol=1e-6)


def test_schedule_validation_errors():
  with pytest.raises(ValueError, match="tau=0"):
    ro.linear_decay_then_constant(1.0, 0.1, 0)
  with pytest.raises(ValueError, match="increasing"):
    ro.step_decay(1.0, [5, 3])


def _plateau_reference(values, factor, patience, threshold, cooldown, min_scale):
  scale, best, bad, cool, scales = 1.0, np.inf, 0, 0, []
  for v in values:
    improved = v < best if np.isinf(best) else v < best - threshold * abs(best)
    if improved:
      best = v
    if improved or cool > 0:
      bad = 0
    else:
      bad += 1
    cool = max(cool - 1, 0)
    if bad > patience:
      scale, bad, cool = max(scale * factor, min_scale), 0, cooldown
    scales.append(scale)
  return scales


@pytest.mark.parametrize("cooldown", [0, 2])
def test_reduce_on_plateau_matches_reference(cooldown):
  values = [
    5.0,
    4.0,
    3.9999,
    4.1,
    4.0,
    3.0,
    3.5,
    3.2,
    3.1,
    3.05,
    3.04,
    3.2,
    2.0,
    2.5,
    2.5,
    2.5,
    2.5,
    2.5,
    2.5,
    2.5,
  ]
  tx = ro.reduce_on_plateau(
    factor=0.5, patience=2, threshold=1e-3, cooldown=cooldown, min_scale=0.1
  )
  update = jax.jit(tx.update)
  state = tx.init(None)
  scales = []
  for v in values:
    u, state = update({"w": jnp.ones(2)}, state, value=v)
    scales.append(float(state.scale))
    np.testing.assert_allclose(np.asarray(u["w"]), float(state.scale), rtol=1e-6)
  expected = _plateau_reference(values, 0.5, 2, 1e-3, cooldown, 0.1)
  np.testing.assert_allclose(scales, expected, rtol=1e-6)
  assert min(expected) < 1.0
  # Steps without a fresh observation leave the state as it is.
  frozen, _ = update({"w": jnp.ones(2)}, state, value=100.0, observe=False)
  assert float(_.scale) == float(state.scale) and int(_.plateau_count) == int(state.plateau_count)


def _rosenbrock(p):
  x, y = p["x"], p["y"]
  return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def test_armijo_condition_holds_for_every_accepted_step(x64):
  tx = ro.armijo(1.0, c=1e-4, decrease_factor=0.5)
  params = {"x": jnp.asarray(-1.2), "y": jnp.asarray(1.0)}
  state = tx.init(params)
  value_and_grad = jax.value_and_grad(_rosenbrock)

  @jax.jit
  def step(params, state):
    value, grad = value_and_grad(params)
    updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=_rosenbrock)
    return optax.apply_updates(params, updates), state, value, grad

  values = []
  for _ in range(60):
    new_params, state, value, grad = step(params, state)
    assert bool(state.accepted)
    eta = float(state.learning_rate)
    g2 = sum(float(v) ** 2 for v in jax.tree.leaves(grad))
    new_value = float(_rosenbrock(new_params))
    assert new_value <= float(value) - 1e-4 * eta * g2 + 1e-12
    # The first eta in 1, 1/2, 1/4, ... satisfying the condition was taken.
    j = int(state.num_backtracking)
    assert eta == 0.5**j
    if j > 0:
      larger = jax.tree.map(lambda p, g, e=eta: p - 2 * e * g, params, grad)
      assert float(_rosenbrock(larger)) > float(value) - 1e-4 * 2 * eta * g2
    values.append(new_value)
    params = new_params
  assert values[-1] < values[0] and np.all(np.diff(values) <= 0)


def test_armijo_takes_no_step_when_no_eta_is_accepted():
  tx = ro.armijo(1.0, max_backtracking_steps=2)
  params = jnp.asarray([3.0])
  f = lambda x: jnp.sum(x**2)
  wrong_direction = -2 * params  # an ascent direction never satisfies the condition
  updates, state = tx.update(
    wrong_direction, tx.init(params), params, value=f(params), grad=2 * params, value_fn=f
  )
  assert not bool(state.accepted) and int(state.num_backtracking) == 2
  np.testing.assert_array_equal(np.asarray(updates), 0.0)


def test_newton_one_step_on_quadratic(x64):
  f = lambda p: 0.5 * p["x"] @ jnp.asarray(A) @ p["x"] - jnp.asarray(B) @ p["x"]
  params = {"x": jnp.asarray(X0)}
  tx = ro.newton()
  grad = jax.grad(f)(params)
  updates, _ = tx.update(grad, tx.init(params), params, value=f(params), grad=grad, value_fn=f)
  np.testing.assert_allclose(
    np.asarray(optax.apply_updates(params, updates)["x"]), np.linalg.solve(A, B), rtol=1e-10
  )
  damped = ro.newton(0.5, damping=2.0)
  updates, _ = damped.update(grad, damped.init(params), params, value_fn=f)
  expected = -0.5 * np.linalg.solve(A + 2.0 * np.eye(6), np.asarray(grad["x"]))
  np.testing.assert_allclose(np.asarray(updates["x"]), expected, rtol=1e-10)


def test_newton_converges_quadratically_on_curved_function(x64):
  f = lambda x: (
    0.5 * x @ jnp.asarray(A) @ x
    - jnp.asarray(B) @ x
    + 0.1 * jnp.sum(jnp.cos(2 * x))
    + 0.05 * jnp.sum(x**4)
  )
  tx = ro.newton()
  params, state = jnp.asarray(X0), tx.init(jnp.asarray(X0))
  norms = []
  for _ in range(8):
    g = jax.grad(f)(params)
    norms.append(float(jnp.linalg.norm(g)))
    updates, state = tx.update(g, state, params, value_fn=f)
    params = optax.apply_updates(params, updates)
  assert norms[-1] < 1e-10 < norms[0]
  # Quadratic convergence near the minimum: |g_{k+1}| <= C |g_k|^2.
  for before, after in zip(norms[-4:-1], norms[-3:], strict=True):
    assert after <= 1.0 * before**2


def test_preconditioned_gd_with_inverse_hessian_is_one_step(x64):
  params = jnp.asarray(X0)
  tx = ro.preconditioned_gd(1.0, np.linalg.inv(A))
  updates, _ = tx.update(jnp.asarray(A) @ params - jnp.asarray(B), tx.init(params), params)
  np.testing.assert_allclose(np.asarray(params + updates), np.linalg.solve(A, B), rtol=1e-10)
  identity, _ = run_ours(ro.preconditioned_gd(0.1, np.eye(6)), steps=4)
  plain, _ = run_ours(ro.sgd(0.1), steps=4)
  np.testing.assert_allclose(identity[-1], plain[-1], rtol=1e-12)
  with pytest.raises(ValueError, match="6 parameter entries"):
    bad = ro.preconditioned_gd(0.1, np.eye(5))
    bad.update(grad_jnp(params), bad.init(params), params)
