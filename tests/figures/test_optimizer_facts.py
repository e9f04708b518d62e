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
