"""Float64 NumPy references written from the lecture's equations, one function per rule.

Each reference runs `steps` iterations from x0 using `grad(x)` and returns the list of the
iterates [x^0, x^1, ...] the rule visits (for Nesterov-type rules: the look-ahead points the
transformation holds, together with the lecture's iterates).
"""

import numpy as np


def run_sgd(x0, grad, steps, eta):
  xs = [x0]
  for _ in range(steps):
    xs.append(xs[-1] - eta * grad(xs[-1]))
  return xs


def run_heavy_ball(x0, grad, steps, eta, beta):
  """Lecture 1.5.1: X^{k+1} = X^k - eta grad(X^k) + beta (X^k - X^{k-1})."""
  xs = [x0, x0 - eta * grad(x0)]
  for _ in range(steps - 1):
    x, x_prev = xs[-1], xs[-2]
    xs.append(x - eta * grad(x) + beta * (x - x_prev))
  return xs[: steps + 1]


def run_heavy_ball_dampened(x0, grad, steps, eta, mu):
  """Slides: v = mu v + (1 - mu) g, X <- X - eta v."""
  xs, v = [x0], np.zeros_like(x0)
  for _ in range(steps):
    v = mu * v + (1 - mu) * grad(xs[-1])
    xs.append(xs[-1] - eta * v)
  return xs


def run_nesterov(x0, grad, steps, eta, beta):
  """Lecture 1.5.2, literally:
  X^{k+1} = X^k - eta grad(X^k + beta (X^k - X^{k-1})) + beta (X^k - X^{k-1}).

  Returns (lecture iterates X^k, look-ahead points X^k + beta (X^k - X^{k-1})), X^{-1} = X^0.
  """
  xs = [x0, x0]
  for _ in range(steps):
    x, x_prev = xs[-1], xs[-2]
    xs.append(x - eta * grad(x + beta * (x - x_prev)) + beta * (x - x_prev))
  xs = xs[1:]
  lookahead = [xs[0]] + [xs[k] + beta * (xs[k] - xs[k - 1]) for k in range(1, len(xs))]
  return xs, lookahead


def run_adagrad(x0, grad, steps, eta, eps):
  """Lecture 2.3.1: G += g^2, X <- X - eta g / sqrt(G + eps)."""
  xs, big_g = [x0], np.zeros_like(x0)
  for _ in range(steps):
    g = grad(xs[-1])
    big_g = big_g + g**2
    xs.append(xs[-1] - eta * g / np.sqrt(big_g + eps))
  return xs


def run_rmsprop(
  x0, grad, steps, eta, gamma, eps, eps_in_sqrt=True, centered=False, from_gradient=False
):
  """Lecture 2.3.2 (eps in the root) or the slides (eps outside); centered: Graves 2013;
  from_gradient: notes 003's start, sigma^0 = |g^0| (the first average is g^2 itself)."""
  xs, big_g, m = [x0], np.zeros_like(x0), np.zeros_like(x0)
  for k in range(steps):
    g = grad(xs[-1])
    big_g = g**2 if from_gradient and k == 0 else gamma * big_g + (1 - gamma) * g**2
    m = gamma * m + (1 - gamma) * g
    second = big_g - m**2 if centered else big_g
    denominator = np.sqrt(second + eps) if eps_in_sqrt else np.sqrt(second) + eps
    xs.append(xs[-1] - eta * g / denominator)
  return xs


def run_rmsprop_momentum(x0, grad, steps, eta, rho, eps, alpha, nesterov):
  """Goodfellow et al. algorithm 8.6 (momentum) / 8.7 (Nesterov momentum).

  8.7: interim theta~ = theta + alpha v; g = grad(theta~); r = rho r + (1 - rho) g^2;
  v = alpha v - eta g / sqrt(r + eps); theta = theta + v.
  Returns (theta^k, points where the gradient is taken).
  """
  thetas, points = [x0], [x0]
  r, v = np.zeros_like(x0), np.zeros_like(x0)
  for _ in range(steps):
    theta = thetas[-1]
    point = theta + alpha * v if nesterov else theta
    g = grad(point)
    r = rho * r + (1 - rho) * g**2
    v = alpha * v - eta * g / np.sqrt(r + eps)
    thetas.append(theta + v)
    points.append(thetas[-1] + alpha * v if nesterov else thetas[-1])
  return thetas, points


def run_adadelta(x0, grad, steps, rho, eps):
  """Lecture 2.3.3 / Zeiler 2012: dX = -sqrt(E[dX^2]_{k-1} + eps) / sqrt(G_k + eps) g."""
  xs, big_g, e_dx = [x0], np.zeros_like(x0), np.zeros_like(x0)
  for _ in range(steps):
    g = grad(xs[-1])
    big_g = rho * big_g + (1 - rho) * g**2
    dx = -np.sqrt(e_dx + eps) / np.sqrt(big_g + eps) * g
    e_dx = rho * e_dx + (1 - rho) * dx**2
    xs.append(xs[-1] + dx)
  return xs


def run_adam(x0, grad, steps, eta, delta, gamma, eps, eps_root):
  """Lecture 2.3.4: moments, bias corrections,
  X <- X - eta M_hat / (sqrt(G_hat + eps_root) + eps)."""
  xs, m, big_g = [x0], np.zeros_like(x0), np.zeros_like(x0)
  for k in range(1, steps + 1):
    g = grad(xs[-1])
    m = delta * m + (1 - delta) * g
    big_g = gamma * big_g + (1 - gamma) * g**2
    m_hat, g_hat = m / (1 - delta**k), big_g / (1 - gamma**k)
    xs.append(xs[-1] - eta * m_hat / (np.sqrt(g_hat + eps_root) + eps))
  return xs


def run_delta_bar_delta(x0, grad, steps, eps0, kappa, phi, theta):
  """Jacobs 1988 (notes 002: raise a rate while the sign holds, cut it when it flips):
  eps += kappa if bar g > 0, eps *= 1 - phi if bar g < 0; bar <- (1 - theta) g + theta bar;
  X <- X - eps g."""
  xs, eps, bar = [x0], np.full_like(x0, eps0), np.zeros_like(x0)
  for _ in range(steps):
    g = grad(xs[-1])
    agree = bar * g
    eps = np.where(agree > 0, eps + kappa, np.where(agree < 0, eps * (1 - phi), eps))
    bar = (1 - theta) * g + theta * bar
    xs.append(xs[-1] - eps * g)
  return xs
