"""Learning-rate schedules on a noisy problem: mini-batch SGD (b = 10) on logistic regression
(20 dims, 2000 training points, 2000 validation points).

  constant              eta_k = eta_0
  1/k                   eta_k = eta_0 / (1 + k / k_0)              (inverse_time_decay)
  linear decay to tau   eta_k = (1 - k/tau) eta_0 + (k/tau) eta_tau, then eta_tau
                        (Goodfellow et al. 8.3.1, eta_tau = eta_0 / 100)
  step decay            eta_k = eta_0 * 0.1^(boundaries passed)
  reduce on plateau     eta <- 0.1 eta when the validation loss, observed every M steps, has
                        not improved for `patience` observations (down to eta_0 / 100)
The training and validation points are disjoint halves of one draw
(`problems.logistic_train_val`): SGD samples only the training half, reduce on plateau watches
only the validation half (as the lecture prescribes; `research.main` does the same), and the
curves are the training objective f - f*. No test set: nothing is reported beyond optimization.
A constant eta leaves SGD at a noise floor proportional to eta; every decaying schedule goes
below it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments.figures import _optim_utils as U
from experiments.figures import common, problems
from experiments.figures.common import FigureResult, check, check_greater
from research import optim

NAME = "lr_schedules"
TITLE = "Learning-rate schedules: constant, 1/k, linear decay to tau, step decay, on plateau"
CAPTION = (
  "Mini-batch SGD (b = 10) on logistic regression with five schedules of the same eta_0. "
  "Left: training f - f* (log scale); right: eta_k. The constant rate stalls at a noise "
  "floor; 1/k, linear decay to tau (then constant), step decay (x0.1 at two boundaries) and "
  "reduce-on-plateau (x0.1 when the loss on held-out validation points stops improving) all "
  "end below it."
)

NAMES = ("constant", "1/k", "linear decay to tau", "step decay", "reduce on plateau")


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.num_points = 2000
  c.dim = 20
  c.l2 = 1e-3
  c.batch = 10
  c.eta0 = 0.5
  c.steps = 4000
  c.k0 = 200  # 1/k: eta halves at k0
  c.tau_fraction = 0.5  # linear decay ends at tau = steps * tau_fraction
  c.boundaries_fraction = (1 / 3, 2 / 3)
  c.observe_every = 50  # reduce on plateau: validation loss observed every M steps
  c.patience = 4
  c.min_scale = 0.01  # eta stays >= eta_0 / 100, as linear decay's eta_tau
  c.seed = 0
  return common.sized(size, c, test={"steps": 2000, "num_points": 1000}, full={"steps": 8000})


def _schedules(c):
  tau = int(c.steps * c.tau_fraction)
  return {
    "constant": c.eta0,
    "1/k": optim.inverse_time_decay(c.eta0, 1.0 / c.k0),
    "linear decay to tau": optim.linear_decay_then_constant(c.eta0, c.eta0 / 100, tau),
    "step decay": optim.step_decay(c.eta0, [int(c.steps * f) for f in c.boundaries_fraction], 0.1),
  }


def _train(tx, c, data, plateau: bool):
  """SGD with batches drawn with replacement; returns (train loss, eta_k) per step."""
  x, y, xv, yv = data
  loss = lambda w, x, y: problems.logistic_loss(w, x, y, c.l2)
  n = x.shape[0]

  def step(carry, inputs):
    w, state = carry
    k, key = inputs
    idx = jax.random.randint(key, (c.batch,), 0, n)
    g = jax.grad(loss)(w, x[idx], y[idx])
    kwargs = {"value": loss(w, xv, yv), "observe": k % c.observe_every == 0} if plateau else {}
    updates, state = tx.update(g, state, w, **kwargs)
    scale = state[1].scale if plateau else 1.0
    return (w + updates, state), (loss(w, x, y), scale)

  w0 = jnp.zeros(x.shape[1])
  keys = jax.random.split(jax.random.key(c.seed), c.steps)
  _, (values, scale) = jax.lax.scan(step, (w0, tx.init(w0)), (jnp.arange(c.steps), keys))
  return values, scale


def run(config) -> FigureResult:
  c = config
  with jax.enable_x64(True):
    (x, y), (xv, yv) = problems.logistic_train_val(c.num_points, c.dim, c.seed)
    data = (x, y, xv, yv)
    f = lambda w: problems.logistic_loss(w, x, y, c.l2)
    f_star = float(jax.jit(lambda: f(U.newton_minimizer(f, jnp.zeros(c.dim))))())
    schedules = _schedules(c)
    plateau_tx = optax.chain(
      optim.sgd(c.eta0), optim.reduce_on_plateau(0.1, c.patience, min_scale=c.min_scale)
    )
    k = jnp.arange(c.steps)
    runs, etas = jax.jit(
      lambda: (
        {
          **{name: _train(optim.sgd(s), c, data, False) for name, s in schedules.items()},
          "reduce on plateau": _train(plateau_tx, c, data, True),
        },
        {
          name: jax.vmap(s)(k) if callable(s) else jnp.full(c.steps, s)
          for name, s in schedules.items()
        },
      )
    )()
    etas = {name: np.asarray(v) for name, v in etas.items()}
  gaps = {name: np.asarray(v) - f_star for name, (v, _) in runs.items()}
  etas["reduce on plateau"] = c.eta0 * np.asarray(runs["reduce on plateau"][1])
  tail = slice(int(0.9 * c.steps), None)
  final = {name: float(np.mean(g[tail])) for name, g in gaps.items()}
  plateau_eta = etas["reduce on plateau"]
  reductions = np.flatnonzero(plateau_eta[1:] < 0.5 * plateau_eta[:-1]) + 1
  q = c.steps // 4
  const_plateau = float(np.mean(gaps["constant"][3 * q :]) / np.mean(gaps["constant"][q : 2 * q]))
  ratios = [final["constant"] / final[n] for n in NAMES[1:]]
  tau = int(c.steps * c.tau_fraction)
  ks = np.arange(c.steps)
  formulas = {
    "1/k": c.eta0 / (1 + ks / c.k0),
    "linear decay to tau": np.where(
      ks < tau, (1 - ks / tau) * c.eta0 + ks / tau * c.eta0 / 100, c.eta0 / 100
    ),
    "step decay": c.eta0
    * 0.1 ** sum((ks >= int(c.steps * f)).astype(int) for f in c.boundaries_fraction),
  }
  formula_err = max(float(np.max(np.abs(etas[n] - v) / v)) for n, v in formulas.items())
  checks = [
    check(
      "constant eta stalls: mean f - f* over the last quarter / over the second quarter",
      const_plateau,
      "> 0.7 (a noise floor)",
      const_plateau > 0.7,
    ),
    check(
      "final (last 10%) f - f*: constant / each decaying schedule (" + ", ".join(NAMES[1:]) + ")",
      np.round(ratios, 2),
      "> 2 each",
      bool(np.all(np.array(ratios) > 2)),
    ),
    check_greater(
      "reduce on plateau: number of reductions (x0.1) triggered by the validation loss",
      float(len(reductions)),
      0.5,
    ),
    check(
      "recorded eta_k vs the written formulas (1/k, linear to tau, step): max relative error",
      formula_err,
      "< 1e-5",
      formula_err < 1e-5,
    ),
  ]
  window, every = 50, 10  # curves for the plot: 50-step moving averages, every 10th step
  smooth = {
    n: np.convolve(g, np.ones(window) / window, mode="valid")[::every] for n, g in gaps.items()
  }
  data = {
    "f_star": f_star,
    "final_gap": final,
    "plateau_reductions_at": reductions,
    "constant_plateau_ratio": const_plateau,
    "tau": tau,
    "every": every,
    "window": window,
    "smoothed_gaps": smooth,
    "etas": {n: v[::every] for n, v in etas.items()},
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def plot(result: FigureResult, out_dir) -> list:
  d = result.data
  fig, axes = common.subplots(1, 2, panel=(5.5, 4.0))
  colors = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange")
  every, window = d["every"], d["window"]
  for name, col in zip(NAMES, colors, strict=True):
    smooth = np.asarray(d["smoothed_gaps"][name])
    label = f"{name} (on validation loss)" if name == "reduce on plateau" else name
    axes[0].semilogy(np.arange(len(smooth)) * every + window, smooth, color=col, label=label)
    eta = np.asarray(d["etas"][name])
    axes[1].semilogy(np.arange(len(eta)) * every, eta, color=col, label=label)
  axes[0].set_xlabel("step k")
  axes[0].set_ylabel("$f(w_k) - f^*$ (training, 50-step moving average)")
  axes[0].set_title("noisy SGD (b = 10) under five schedules")
  axes[1].axvline(d["tau"], color="gray", ls=":", lw=0.8)
  axes[1].text(d["tau"], 0.3, " $\\tau$", color="gray")
  axes[1].set_xlabel("step k")
  axes[1].set_ylabel("learning rate $\\eta_k$")
  axes[1].set_title("the schedules")
  for ax in axes:
    ax.legend(fontsize=8)
  return [common.save_figure(fig, out_dir, NAME)]
