"""The lecture's experiment: logistic regression (strongly convex with a small L2 term), 20
dimensions, 10^4 points, a fixed learning rate: GD vs SGD vs mini-batches.

  f(w) = 1/N sum_i log(1 + exp(-y_i <x_i, w>)) + lam/2 |w|^2,  y_i in {-1, +1}
  (`problems.logistic_loss` on `problems.logistic_data`).

Each epoch splits a fresh permutation of the data into N/b mini-batches (sampling without
replacement, as the lecture's practice); one extra run samples with replacement. f* comes from
Newton's method (`research.optim.newton`). Also: the mini-batch gradient's variance against b
(the lecture: the variance falls as 1/b), and SGD with eta_k ~ 1/k
(`research.optim.inverse_time_decay`) against a constant eta that stalls at a noise floor.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.figures import _optim_utils as U
from experiments.figures import common, problems
from experiments.figures.common import FigureResult, check, check_close, check_less
from research import optim

NAME = "sgd_minibatch_logistic"
TITLE = "GD vs SGD vs mini-batch SGD on logistic regression (20 dims, 10^4 points)"
CAPTION = (
  "Logistic regression, d = 20, N = 10^4, fixed eta. f - f* against epochs (data passes) and "
  "against updates: per epoch, small batches make more progress; per update, large batches "
  "(and GD) do. Right: the variance of the mini-batch gradient against b (fitted exponent, "
  "lecture: 1/b; without replacement it is smaller by (N - b)/(N - 1)). SGD with a constant "
  "eta stalls at a noise floor; eta_k = eta_0 / (1 + k/N) keeps decreasing."
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.num_points = 10_000
  c.dim = 20
  c.l2 = 1e-3
  c.eta = 0.05
  c.epochs = 8
  c.evals_per_epoch = 10
  c.batch_sizes = (1, 10, 100, 1000, 10_000)
  c.variance_batch_sizes = (1, 4, 16, 64, 256, 1024)
  c.variance_draws = 4000
  c.loose_gap = 0.1  # epochs to reach f - f* <= this are compared across b
  c.seed = 0
  return common.sized(
    size,
    c,
    test={
      "num_points": 2000,
      "epochs": 3,
      "batch_sizes": (1, 10, 100, 2000),
      "variance_draws": 2000,
    },
    full={"epochs": 30},
  )


def epoch_indices(key, n: int, replacement: bool):
  """(n,) example indices for one epoch: a permutation, or n draws with replacement."""
  if replacement:
    return jax.random.randint(key, (n,), 0, n)
  return jax.random.permutation(key, n)


def train(
  tx, x, y, l2, *, batch: int, epochs: int, evals_per_epoch: int, key, replacement: bool = False
):
  """Mini-batch SGD with `tx`; returns f(w) at (epochs * evals + 1) points and the update count
  at each. Per epoch: N indices (a permutation, or N draws with replacement) cut into N/b
  batches. Jit the caller."""
  n = x.shape[0]
  per_epoch = n // batch
  evals = min(evals_per_epoch, per_epoch)
  steps_per_eval = per_epoch // evals
  full = lambda w: problems.logistic_loss(w, x, y, l2)
  grad = jax.grad(problems.logistic_loss)

  def step(carry, idx):
    w, state = carry
    g = grad(w, x[idx], y[idx], l2)
    updates, state = tx.update(g, state, w)
    return (w + updates, state), None

  def eval_block(carry, idx):  # idx: (steps_per_eval, batch)
    carry, _ = jax.lax.scan(step, carry, idx)
    return carry, full(carry[0])

  def epoch(carry, key):
    idx = epoch_indices(key, n, replacement)
    idx = idx[: evals * steps_per_eval * batch].reshape(evals, steps_per_eval, batch)
    return jax.lax.scan(eval_block, carry, idx)

  w0 = jnp.zeros(x.shape[1], x.dtype)
  _, values = jax.lax.scan(epoch, (w0, tx.init(w0)), jax.random.split(key, epochs))
  values = jnp.concatenate([full(w0)[None], values.reshape(-1)])
  updates = jnp.arange(values.shape[0]) * steps_per_eval
  return values, updates


def gradient_variances(x, y, w, l2, batch_sizes, draws: int, key):
  """E |g_B - g|^2 over `draws` mini-batches of each size b (g: the full gradient), sampled
  with and without replacement; and tr Cov of the per-example gradients. Jit the caller."""
  per_example = jax.vmap(jax.grad(problems.logistic_loss), in_axes=(None, 0, 0, None))(
    w, x[:, None], y[:, None], l2
  )  # (N, d)
  full = per_example.mean(0)
  n = x.shape[0]
  trace_cov = jnp.sum(jnp.mean((per_example - full) ** 2, axis=0))

  def variance(idx):  # idx: (draws, b) example indices of `draws` mini-batches
    deviation = lambda i: jnp.sum((per_example[i].mean(0) - full) ** 2)
    return jnp.mean(jax.lax.map(deviation, idx, batch_size=64))  # 64 batches in memory at once

  # One draw of random numbers shared by all b: with replacement, the first b of max(b)
  # uniform indices; without, each permutation of the N examples cut into N // b batches.
  k_with, k_without = jax.random.split(key)
  uniform = jax.random.randint(k_with, (draws, max(batch_sizes)), 0, n)
  num_perms = -(-draws * max(batch_sizes) // n)
  perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(k_without, num_perms))
  with_rep = jnp.stack([variance(uniform[:, :b]) for b in batch_sizes])
  without = jnp.stack(
    [variance(perms[:, : (n // b) * b].reshape(-1, b)[:draws]) for b in batch_sizes]
  )
  return with_rep, without, trace_cov


def run(config) -> FigureResult:
  c = config
  with jax.enable_x64(True):
    x, y = problems.logistic_data(c.num_points, c.dim, c.seed)
    f = lambda w: problems.logistic_loss(w, x, y, c.l2)
    w_star = jax.jit(lambda: U.newton_minimizer(f, jnp.zeros(c.dim)))()
    f_star = float(f(w_star))
    key = jax.random.key(c.seed)
    common = dict(epochs=c.epochs, evals_per_epoch=c.evals_per_epoch, key=key)
    curves = {}
    for b in c.batch_sizes:
      curves[f"b={b}"] = jax.jit(
        lambda b=b: train(optim.sgd(c.eta), x, y, c.l2, batch=b, **common)
      )()
    curves["b=1, with replacement"] = jax.jit(
      lambda: train(optim.sgd(c.eta), x, y, c.l2, batch=1, replacement=True, **common)
    )()
    decay = optim.inverse_time_decay(c.eta, 1.0 / c.num_points)
    curves["b=1, eta_k = eta_0/(1 + k/N)"] = jax.jit(
      lambda: train(optim.sgd(decay), x, y, c.l2, batch=1, **common)
    )()
    var_with, var_without, trace_cov = jax.jit(
      lambda: gradient_variances(x, y, w_star, c.l2, c.variance_batch_sizes, c.variance_draws, key)
    )()
  curves = {k: (np.asarray(v) - f_star, np.asarray(u)) for k, (v, u) in curves.items()}
  bs = np.asarray(c.variance_batch_sizes, np.float64)
  var_with, var_without = np.asarray(var_with), np.asarray(var_without)
  trace_cov = float(trace_cov)
  slope = U.loglog_slope(bs, var_with)
  theory_without = trace_cov / bs * (c.num_points - bs) / (c.num_points - 1)
  last = max(1, c.evals_per_epoch)  # the last epoch's evaluation points

  def floor(name):
    return float(np.mean(curves[name][0][-last:]))

  gd, sgd = f"b={c.batch_sizes[-1]}", "b=1"
  reach = []
  for b in c.batch_sizes:
    hit = U.iterations_to(curves[f"b={b}"][0], c.loose_gap)
    reach.append(
      float(curves[f"b={b}"][1][int(hit)] * b / c.num_points) if np.isfinite(hit) else float("inf")
    )
  with jax.enable_x64(True):
    distinct = jax.jit(
      lambda: jnp.stack(
        [
          jnp.mean(jnp.zeros(c.num_points).at[epoch_indices(k, c.num_points, rep)].set(1.0))
          for rep in (True, False)
          for k in jax.random.split(key, 4)
        ]
      )
    )()
  distinct = np.asarray(distinct).reshape(2, -1).mean(1)
  checks = [
    check_close(
      "mini-batch gradient variance vs b: fitted log-log exponent (with replacement)",
      slope,
      -1.0,
      rtol=0.1,
    ),
    check_close(
      "variance at b = 1 vs tr Cov(per-example gradients)", var_with[0], trace_cov, rtol=0.15
    ),
    check_close(
      "without replacement at b = 1024: measured / (tr Cov / b (N-b)/(N-1))",
      float(var_without[-1] / theory_without[-1]),
      1.0,
      rtol=0.15,
    ),
    check(
      f"epochs to reach f - f* <= {c.loose_gap:g} for b = "
      + ", ".join(str(b) for b in c.batch_sizes),
      reach,
      "non-decreasing in b and b = 1 < GD (per epoch, small batches win early)",
      all(a <= b for a, b in zip(reach, reach[1:], strict=False)) and reach[0] < reach[-1],
    ),
    check_less(
      "1/k decay vs constant eta (b = 1): last-epoch mean f - f*, ratio",
      floor("b=1, eta_k = eta_0/(1 + k/N)") / floor(sgd),
      0.5,
    ),
    check(
      "constant-eta SGD stalls: last-epoch f - f* over the previous epoch's",
      floor(sgd) / float(np.mean(curves[sgd][0][-2 * last : -last])),
      "> 0.5 (a plateau)",
      floor(sgd) / float(np.mean(curves[sgd][0][-2 * last : -last])) > 0.5,
    ),
    check(
      "share of the examples visited in one epoch: with vs without replacement",
      np.round(distinct, 4),
      f"{1 - np.exp(-1):.4f} (1 - 1/e) vs 1",
      abs(distinct[0] - (1 - np.exp(-1))) < 0.01 and distinct[1] == 1.0,
    ),
  ]
  data = {
    "f_star": f_star,
    "variance_batch_sizes": bs,
    "variance_with_replacement": var_with,
    "variance_without_replacement": var_without,
    "trace_cov": trace_cov,
    "variance_exponent": slope,
    "last_epoch_gap": {k: floor(k) for k in curves},
    "curves": {k: {"gap": v, "updates": u} for k, (v, u) in curves.items()},
    "epochs_to_loose_gap": reach,
    "distinct_share": distinct,
    "epochs": c.epochs,
    "evals_per_epoch": c.evals_per_epoch,
    "num_points": c.num_points,
    "gd_name": gd,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def plot(result: FigureResult, out_dir) -> list:
  d = result.data
  fig, axes = common.subplots(1, 3, panel=(4.8, 4.0))
  n = d["num_points"]
  for name, curve in d["curves"].items():
    gap, updates = np.asarray(curve["gap"]), np.asarray(curve["updates"])
    b = int(name[2:].split(",")[0])  # "b=100" or "b=1, with replacement"
    label = "GD (b = N)" if name == d["gd_name"] else name.replace("eta", "$\\eta$")
    style = "--" if "replacement" in name else (":" if "eta_k" in name else "-")
    epochs = updates * b / n
    axes[0].semilogy(epochs, gap, style, marker="." if b == n else None, label=label)
    axes[1].loglog(np.maximum(updates, 1), gap, style, marker="." if b == n else None, label=label)
  axes[0].set_xlabel("epochs (per-example gradients / N)")
  axes[1].set_xlabel("updates (iterations)")
  for ax in axes[:2]:
    ax.set_ylabel("$f(w) - f^*$")
    ax.legend(fontsize=7)
  axes[0].set_title("loss vs epochs, fixed $\\eta$")
  axes[1].set_title("loss vs updates")
  ax = axes[2]
  bs = np.asarray(d["variance_batch_sizes"])
  ax.loglog(
    bs,
    d["variance_with_replacement"],
    "o-",
    label=f"with replacement (slope {d['variance_exponent']:.2f})",
  )
  ax.loglog(bs, d["variance_without_replacement"], "s-", label="without replacement")
  ax.loglog(bs, d["trace_cov"] / bs, "k--", lw=0.8, label="tr Cov / b")
  ax.set_xlabel("batch size b")
  ax.set_ylabel("$E|g_B - \\nabla f|^2$ at $w^*$")
  ax.set_title("mini-batch gradient variance $\\propto 1/b$")
  ax.legend(fontsize=7)
  return [common.save_figure(fig, out_dir, NAME)]
