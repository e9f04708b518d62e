"""Each rule against a float64 NumPy reference written from the lecture's equation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import research.optim as ro
from tests.optim import references as ref

STEPS = 12
_RNG = np.random.default_rng(0)
_Q = _RNG.normal(size=(6, 6))
A = _Q @ _Q.T / 6 + 0.5 * np.eye(6)
B = _RNG.normal(size=6)
X0 = _RNG.normal(size=6)


def grad_np(x):
  """Gradient of 0.5 x'Ax - b'x + 0.1 sum(cos 2x): curved, not quadratic."""
  return A @ x - B - 0.2 * np.sin(2 * x)


def grad_jnp(x):
  return jnp.asarray(A) @ x - jnp.asarray(B) - 0.2 * jnp.sin(2 * x)


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


def run_ours(tx, steps=STEPS, x0=X0):
  """Iterates of `tx` in float64 on the test function, jitted step."""
  params = jnp.asarray(x0, jnp.float64)
  state = tx.init(params)

  @jax.jit
  def step(params, state):
    updates, state = tx.update(grad_jnp(params), state, params)
    return optax.apply_updates(params, updates), state

  xs = [np.asarray(params)]
  for _ in range(steps):
    params, state = step(params, state)
    xs.append(np.asarray(params))
  return xs, state


def assert_trajectories_close(ours, expected):
  assert len(ours) == len(expected)
  for k, (a, b) in enumerate(zip(ours, expected, strict=True)):
    assert a.dtype == np.float64
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"step {k}")


CASES = {
  "sgd": (lambda: ro.sgd(0.1), lambda: ref.run_sgd(X0, grad_np, STEPS, 0.1)),
  "sgd_momentum": (
    lambda: ro.sgd(0.05, momentum=0.8),
    lambda: ref.run_heavy_ball(X0, grad_np, STEPS, 0.05, 0.8),
  ),
  "sgd_nesterov_lookahead": (
    lambda: ro.sgd(0.05, momentum=0.8, nesterov=True),
    lambda: ref.run_nesterov(X0, grad_np, STEPS, 0.05, 0.8)[1],
  ),
  "heavy_ball": (
    lambda: ro.heavy_ball(0.05, 0.8),
    lambda: ref.run_heavy_ball(X0, grad_np, STEPS, 0.05, 0.8),
  ),
  "heavy_ball_dampened": (
    lambda: ro.heavy_ball(0.2, 0.7, dampening=True),
    lambda: ref.run_heavy_ball_dampened(X0, grad_np, STEPS, 0.2, 0.7),
  ),
  "adagrad": (
    lambda: ro.adagrad(0.3, initial_accumulator_value=0.0, eps=1e-3),
    lambda: ref.run_adagrad(X0, grad_np, STEPS, 0.3, 1e-3),
  ),
  "rmsprop": (
    lambda: ro.rmsprop(0.05, 0.8, 1e-3),
    lambda: ref.run_rmsprop(X0, grad_np, STEPS, 0.05, 0.8, 1e-3),
  ),
  "rmsprop_slides_eps": (
    lambda: ro.rmsprop(0.05, 0.8, 1e-3, eps_in_sqrt=False),
    lambda: ref.run_rmsprop(X0, grad_np, STEPS, 0.05, 0.8, 1e-3, eps_in_sqrt=False),
  ),
  "rmsprop_centered": (
    lambda: ro.rmsprop(0.05, 0.8, 1e-3, centered=True),
    lambda: ref.run_rmsprop(X0, grad_np, STEPS, 0.05, 0.8, 1e-3, centered=True),
  ),
  "rmsprop_momentum": (
    lambda: ro.rmsprop(0.05, 0.8, 1e-3, momentum=0.7),
    lambda: ref.run_rmsprop_momentum(X0, grad_np, STEPS, 0.05, 0.8, 1e-3, 0.7, False)[0],
  ),
  "rmsprop_nesterov": (
    lambda: ro.rmsprop(0.05, 0.8, 1e-3, momentum=0.7, nesterov=True),
    lambda: ref.run_rmsprop_momentum(X0, grad_np, STEPS, 0.05, 0.8, 1e-3, 0.7, True)[1],
  ),
  "adadelta": (
    lambda: ro.adadelta(1.0, 0.9, 1e-4),
    lambda: ref.run_adadelta(X0, grad_np, STEPS, 0.9, 1e-4),
  ),
  "adadelta_lecture_no_learning_rate": (
    lambda: ro.adadelta(rho=0.95),
    lambda: ref.run_adadelta(X0, grad_np, STEPS, 0.95, 1e-6),
  ),
  "adam": (
    lambda: ro.adam(0.1, 0.8, 0.95, 1e-3),
    lambda: ref.run_adam(X0, grad_np, STEPS, 0.1, 0.8, 0.95, 1e-3, 0.0),
  ),
  "adam_lecture_eps": (
    lambda: ro.adam(0.1, 0.8, 0.95, eps=0.0, eps_root=1e-3),
    lambda: ref.run_adam(X0, grad_np, STEPS, 0.1, 0.8, 0.95, 0.0, 1e-3),
  ),
  # The calls the docstrings give for the slides' suggested settings (notes 004).
  "rmsprop_slides_settings": (
    lambda: ro.rmsprop(0.05, decay=0.999, eps=1e-5, eps_in_sqrt=False),
    lambda: ref.run_rmsprop(X0, grad_np, STEPS, 0.05, 0.999, 1e-5, eps_in_sqrt=False),
  ),
  "rmsprop_notes_003_start": (
    lambda: ro.rmsprop(0.05, 0.8, 1e-3, eps_in_sqrt=False, initial_from_gradient=True),
    lambda: ref.run_rmsprop(
      X0, grad_np, STEPS, 0.05, 0.8, 1e-3, eps_in_sqrt=False, from_gradient=True
    ),
  ),
  "delta_bar_delta": (
    lambda: ro.delta_bar_delta(0.01, 0.002, 0.3, 0.7),
    lambda: ref.run_delta_bar_delta(X0, grad_np, STEPS, 0.01, 0.002, 0.3, 0.7),
  ),
  "adam_slides_settings": (
    lambda: ro.adam(0.1, b1=0.9, b2=0.999, eps=0.0, eps_root=1e-5),
    lambda: ref.run_adam(X0, grad_np, STEPS, 0.1, 0.9, 0.999, 0.0, 1e-5),
  ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_matches_float64_reference(name, x64):
  make_tx, make_reference = CASES[name]
  ours, _ = run_ours(make_tx())
  assert_trajectories_close(ours, make_reference())


def test_nesterov_holds_lookahead_of_literal_formula(x64):
  """The held parameters are Y^k = X^k + beta (X^k - X^{k-1}) of the lecture's NAG recursion,
  and nesterov_position recovers X^k from them."""
  eta, beta = 0.05, 0.8
  xs, lookahead = ref.run_nesterov(X0, grad_np, STEPS, eta, beta)
  ours, state = run_ours(ro.nesterov(eta, beta))
  assert_trajectories_close(ours, lookahead)
  position = ro.nesterov_position(jnp.asarray(ours[-1]), state, beta)
  np.testing.assert_allclose(np.asarray(position), xs[-1], rtol=1e-10)
  # The look-ahead differs from the iterate itself, so the mapping is not vacuous.
  assert np.max(np.abs(lookahead[-1] - xs[-1])) > 1e-4


def test_clip_sets_large_entries_to_the_bound(x64):
  g = jnp.asarray([-7.0, -5.0, 0.3, 5.0, 12.0])
  updates, _ = ro.clip(5.0).update(g, ro.clip(5.0).init(g))
  np.testing.assert_array_equal(np.asarray(updates), [-5.0, -5.0, 0.3, 5.0, 5.0])


@pytest.mark.parametrize("scale", [0.1, 10.0])
def test_clip_by_global_norm_reference(scale, x64):
  tree = {"a": jnp.asarray(_RNG.normal(size=(3, 2)) * scale), "b": jnp.asarray([scale])}
  tx = ro.clip_by_global_norm(2.0)
  updates, _ = tx.update(tree, tx.init(tree))
  flat = np.concatenate([np.ravel(tree["a"]), np.ravel(tree["b"])])
  norm = np.sqrt(np.sum(flat**2))
  factor = min(1.0, 2.0 / norm)
  np.testing.assert_allclose(np.asarray(updates["a"]), np.asarray(tree["a"]) * factor, rtol=1e-12)
  np.testing.assert_allclose(np.asarray(updates["b"]), np.asarray(tree["b"]) * factor, rtol=1e-12)
  assert (norm > 2.0) == (scale == 10.0)


def test_heavy_ball_and_adam_reach_parabola_minimum(x64):
  """Convergence on the quadratic part alone: the minimizer is A^{-1} b."""
  target = np.linalg.solve(A, B)
  for tx in (ro.heavy_ball(0.1, 0.9), ro.nesterov(0.1, 0.9), ro.adam(0.05)):
    params = jnp.asarray(X0)
    state = tx.init(params)
    step = jax.jit(lambda p, s, tx=tx: tx.update(jnp.asarray(A) @ p - jnp.asarray(B), s, p))
    for _ in range(1500):
      updates, state = step(params, state)
      params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(np.asarray(params), target, atol=1e-4)


def test_rmsprop_from_the_first_gradient_steps_by_eta_sign_g_first(x64):
  """Notes 003: sigma^0 = |g^0|, so the first step is eta g / |g| (eps outside the root, 0)."""
  tx = ro.rmsprop(0.1, 0.9, 0.0, eps_in_sqrt=False, initial_from_gradient=True)
  g = jnp.array([3.0, -0.02, 1e3])
  updates, state = tx.update(g, tx.init(g))
  np.testing.assert_allclose(updates, -0.1 * np.sign(g), rtol=1e-12)
  np.testing.assert_allclose(state[0].nu, g**2, rtol=1e-12)
  with pytest.raises(ValueError, match="initial_from_gradient"):
    ro.rmsprop(0.1, centered=True, initial_from_gradient=True)


def test_delta_bar_delta_raises_agreeing_rates_and_cuts_flipping_ones(x64):
  """Two steps with one coordinate keeping its sign and one flipping: the first rate grows by
  kappa, the second shrinks by the factor 1 - phi; a zero trace (first step) changes nothing."""
  tx = ro.delta_bar_delta(0.5, increase=0.25, decrease=0.5, theta=0.0)
  params = jnp.zeros(2)
  state = tx.init(params)
  _, state = tx.update(jnp.array([1.0, 1.0]), state)
  np.testing.assert_array_equal(state[0].rates, [0.5, 0.5])
  updates, state = tx.update(jnp.array([2.0, -2.0]), state)
  np.testing.assert_array_equal(state[0].rates, [0.75, 0.25])
  np.testing.assert_array_equal(updates, [-1.5, 0.5])
  with pytest.raises(ValueError, match="decrease"):
    ro.delta_bar_delta(0.1, 0.01, decrease=1.5)
