"""`optimizer_facts`: the test-size run passes every check, and heavy ball's step on a constant
gradient follows eta |g| (1 - alpha^k) / (1 - alpha), whose limit is `terminal_speed`."""

import jax
import numpy as np
import pytest

from experiments.figures import optimizer_facts


def test_run_passes_at_test_size():
  result = optimizer_facts.run(optimizer_facts.get_config("test"))
  failed = [(c.what, c.measured, c.expected) for c in result.checks if not c.passed]
  assert not failed, failed
  assert result.paper is optimizer_facts.PAPER
  assert len(result.data["sgd_slopes"]) == 2
  assert set(result.data["momentum_ratios"]) == {"0.5", "0.9", "0.99"}


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9, 0.99])
def test_heavy_ball_terminal_speed(alpha):
  eta, g, steps = 0.01, np.array([3.0, -4.0]), 2000
  with jax.enable_x64(True):
    measured = optimizer_facts.momentum_steps(eta, alpha, g, steps)
  k = np.arange(1, steps + 1)
  expected = eta * np.linalg.norm(g) * (1 - alpha**k) / (1 - alpha)  # geometric sum of steps
  np.testing.assert_allclose(measured, expected, rtol=1e-12)
  assert optimizer_facts.terminal_speed(alpha) == pytest.approx(1 / (1 - alpha))
  np.testing.assert_allclose(
    measured[-1] / (eta * np.linalg.norm(g)), optimizer_facts.terminal_speed(alpha), rtol=1e-6
  )


def test_rare_coordinates_get_sqrt_period_larger_adagrad_steps():
  """AdaGrad's G_i counts only the steps where coordinate i had a gradient: k / P_i of them, so
  its step there is sqrt(P_i) times the every-step coordinate's; SGD's steps are all equal."""
  from research import optim

  periods = (1, 4, 25)
  ada = optimizer_facts.rare_steps(optim.adagrad(1.0), periods, 4000)
  np.testing.assert_allclose(ada / ada[0], np.sqrt(periods), rtol=0.02)
  sgd = optimizer_facts.rare_steps(optim.sgd(1.0), periods, 4000)
  np.testing.assert_allclose(sgd / sgd[0], 1.0, rtol=1e-6)


def test_tilted_well_minima_and_momentum():
  """The double well's minima are the outer roots of f'; GD from -3 stops in the local one,
  heavy ball 0.9 rolls on to the global one (the figure's check, at its default settings)."""
  import jax.numpy as jnp

  from experiments.figures import _optim_utils as U

  c = optimizer_facts.get_config("test")
  x = np.sort(np.roots([0.4, 0.0, -1.0, -0.3]).real)
  grad = jax.grad(optimizer_facts.tilted_well)
  np.testing.assert_allclose([float(grad(jnp.full(1, v))[0]) for v in x], 0.0, atol=1e-5)
  finals = {}
  for name in ("GD", "heavy ball 0.9"):
    tx = optimizer_facts.WELL_RULES[name](c.well_eta)
    xs = U.optimize(tx, optimizer_facts.tilted_well, jnp.full(1, c.well_start), c.well_steps).xs
    finals[name] = float(xs[-1, 0])
  assert abs(finals["GD"] - x[0]) < 1e-3
  assert abs(finals["heavy ball 0.9"] - x[2]) < 1e-3


def test_smoothness_forms_fail_with_too_small_an_l():
  """The pair ratios are real tests: with L halved, the quadratic breaks <dg, dx> <= L |dx|^2."""
  with jax.enable_x64(True):
    lam = np.array([0.1, 1.0, 2.0])
    fun = lambda x: 0.5 * jax.numpy.sum(lam * x * x)
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(2, 200, 3))
    _, d2, mono, g2 = (np.asarray(v) for v in optimizer_facts.convexity_pairs(fun, xs, ys))
  assert (mono / (lam.max() * d2)).max() <= 1 + 1e-12
  assert (mono / (g2 / lam.max())).min() >= 1 - 1e-12
  assert (mono / (0.5 * lam.max() * d2)).max() > 1
  assert (g2 / (lam.min() ** 2 * d2)).min() >= 1 - 1e-12


def test_beta_schedule_through_inject_hyperparams_follows_the_lecture():
  """The documented way to raise alpha over training: inject_hyperparams(heavy_ball) with a
  schedule for beta gives dX^k = beta_k dX^{k-1} - eta g^k, beta_k the schedule at step k."""
  import jax.numpy as jnp
  import optax

  from research import optim

  eta, steps = 0.1, 30
  beta = optax.linear_schedule(0.5, 0.99, 20)
  tx = optax.inject_hyperparams(optim.heavy_ball)(learning_rate=eta, beta=beta)
  lam = np.array([0.3, 1.0, 2.0])
  x, state = jnp.ones(3), tx.init(jnp.ones(3))
  ref_x, ref_v = np.ones(3), np.zeros(3)
  for k in range(steps):
    u, state = tx.update(jnp.asarray(lam) * x, state, x)
    x = x + u
    ref_v = float(beta(k)) * ref_v - eta * lam * ref_x
    ref_x = ref_x + ref_v
  np.testing.assert_allclose(np.asarray(x), ref_x, rtol=1e-5)
  assert float(state.hyperparams["beta"]) == pytest.approx(0.99)
