"""Ioffe & Szegedy 2015, Fig. 1: a 3 x 100 sigmoid MLP trained with and without batch norm.

The paper's setup, run here at default size on the full Fashion-MNIST (Debian's
dataset-fashion-mnist; digits when absent): 28x28 inputs, 3 fully connected hidden layers of
100 sigmoid units, batch 60, 50,000 steps of SGD (`research.optim.sgd`, rate 0.1, ours: the
paper does not state it), all 55,000 training images left after the 5,000 validation images are
held out, the 10,000 test images. (a) accuracy against steps with and without BN, (b, c) the
15th, 50th and 85th percentiles of one last-hidden-layer sigmoid's input over training. The
paper's claims, checked as it makes them: with BN the network trains faster and ends with a
higher test accuracy, and the input distribution is much more stable. Here the curve of (a) is
the validation accuracy (held out of the training split, `_fit.load_data`: the split one watches
during training); the test split is evaluated once, on the final parameters of each network
(nothing is chosen on either). `--full` is the paper's MNIST (TFDS 'mnist').
The BN network is `research.models.create('mlp', norm='batch')` (normalization before the
sigmoid, as in the paper).

Faster (ours, in the form of the paper's Sec. 4.2.2, "matches the accuracy of Inception in less
than half the number of training steps"): the first evaluation step at which BN's validation
accuracy reaches no-BN's final one, as a fraction of the steps; "faster" is a fraction below 1
(Fig. 1 gives no number).

Stability measure (ours): for each percentile track p_k(t), k in {15, 50, 85}, evaluated on a
fixed batch of held-out images (normalized with that batch's own statistics, as in training),
after the first `settle` fraction of training,

    drift = mean_k std_t(p_k(t)) / mean_t(p_85(t) - p_15(t)),

the fluctuation of the percentiles relative to the distribution's own width (scale-free);
"more stable" is drift(BN) / drift(no BN) below 1.

Two arms on what BN allows (notes 000 ~556: with BN no dropout, or only a little, is needed, and
a larger learning rate can be used, because the inputs stay where the gradient is large, 004
~2877-2895; Ioffe & Szegedy Sec. 3.3 "Batch Normalization enables higher learning rates" and
Sec. 4.2.1 "Increase learning rate", "Remove Dropout"):

* learning rate: both networks for `lr_steps` steps at each rate of `lr_rates`, beside the main
  runs' rate `learning_rate` (their validation accuracy at step `lr_steps`); a rate "trains" a
  network when its validation accuracy after `lr_steps` steps is at least halfway from chance
  (1/10) to that network's best over the rates. Claim: BN's largest rate that trains is larger.
* dropout: both networks with dropout (`dropout_rate` after every hidden layer) for
  `dropout_steps` steps; the best validation accuracy within those steps against the main runs'
  over the same steps. Claim: with BN dropout does not raise it (the paper: removing it raised
  BN-Inception's validation accuracy).

BN's backward pass (notes 000 ~546-548; Ioffe & Szegedy, Algorithm 1's gradients), for one
unit over a batch z_1..z_B, u_i = (z_i - mu_B) / sqrt(sigma_B^2 + eps), y_i = gamma u_i + beta:

    dDiv/du_i = gamma dDiv/dy_i
    dDiv/dsigma_B^2 = -1/2 (sigma_B^2 + eps)^(-3/2) sum_i dDiv/du_i (z_i - mu_B)
    dDiv/dmu_B = -1/sqrt(sigma_B^2 + eps) sum_i dDiv/du_i   (+ dDiv/dsigma_B^2 x -2/B sum_i
                 (z_i - mu_B), which is 0)
    dDiv/dz_i = dDiv/du_i / sqrt(sigma_B^2 + eps) + dDiv/dsigma_B^2 2 (z_i - mu_B) / B
                + dDiv/dmu_B / B

computed by hand in float64 and compared with autodiff. The notes print dDiv/dsigma_B^2 without
the factor (z_i - mu_B) inside the sum; the data records how far that form is from autodiff.
"""

from __future__ import annotations

import math
import pathlib

import jax
import ml_collections
import numpy as np

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check, check_greater, check_less
from research import optim
from research.models import create

NAME = "batch_norm"
TITLE = "Batch norm (Ioffe & Szegedy Fig. 1): 3 x 100 sigmoid MLP, batch 60, with vs without BN"
CAPTION = (
  "(a) Validation accuracy of a 3-hidden-layer, 100-unit sigmoid MLP trained with SGD at batch 60 "
  "for 50,000 steps on the full Fashion-MNIST, with and without batch normalization (dotted: "
  "with dropout, shorter runs). (b, c) The 15th, 50th and 85th percentiles of the input to one "
  "sigmoid of the last hidden layer, over a fixed batch of held-out images, during training: "
  "with BN they stay put, without BN they drift. (d) Validation accuracy after a short run at "
  "larger learning rates: without BN training fails at a rate BN still trains at. Measured "
  "(2026-12-05): BN reaches no-BN's final validation accuracy in under half the steps and its "
  "final test accuracy is higher, but the curves meet after about 20,000 steps, so BN is not "
  "above no-BN at every later evaluation (its validation curve also fluctuates more). Without "
  "BN the net fails only at 200x the main run's rate (at 10x it trains better than at 1x), and "
  "dropout lowers the best validation accuracy with and without BN alike."
)
PAPER = common.Paper(
  source='Ioffe & Szegedy 2015, "Batch Normalization", Fig. 1; Sec. 3.3, 4.2.1',
  setup="MNIST, 3 fully connected hidden layers of 100 sigmoid units, batch 60, 50,000 steps",
  number=(
    "with BN the network trains faster and reaches a higher test accuracy, and the distribution "
    "of a last-hidden-layer sigmoid input (its 15th / 50th / 85th percentiles) is much more "
    "stable, while without BN it drifts (Fig. 1, no numbers); BN enables higher learning rates "
    "and removing dropout from BN-Inception raised its validation accuracy (Sec. 3.3, 4.2.1)"
  ),
)

PERCENTILES = (15.0, 50.0, 85.0)
NORMS = {"no_bn": "none", "bn": "batch"}  # data key -> research.models norm


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist_idx"
  config.width = 100
  config.depth = 3
  config.batch_size = 60
  config.steps = 50_000
  config.eval_every = 1000
  config.learning_rate = 0.1
  config.max_train = None  # all 55,000 training images left after the validation set
  config.max_val = None  # the 5,000 validation images (held out of the training split)
  config.max_test = None  # the 10,000 test images, evaluated once at the end
  config.probe_size = 1000
  config.unit = 0
  config.settle = 0.1
  config.seed = 0
  # the learning-rate arm: each rate for `lr_steps` steps (10x, 50x, 200x the main runs' rate;
  # lr_steps a multiple of eval_every: the main runs give the accuracy at `learning_rate`)
  config.lr_rates = (1.0, 5.0, 20.0)
  config.lr_steps = 2000
  # the dropout arm: both networks with dropout for `dropout_steps` (a multiple of eval_every)
  config.dropout_rate = 0.2
  config.dropout_steps = 10_000
  return common.sized(
    size,
    config,
    test={
      "steps": 600,
      "eval_every": 60,
      "max_train": 10_000,
      "max_val": 2000,
      "max_test": 2000,
      "lr_rates": (1.0, 20.0),
      "lr_steps": 300,
      "dropout_steps": 300,
    },
    full={"dataset": "mnist", "eval_every": 500},
  )


def drift(tracks: np.ndarray, settle: float) -> float:
  """tracks (E, 3): percentiles 15/50/85 over time; see the module docstring."""
  t = tracks[int(round(settle * (len(tracks) - 1))) :]
  return float(t.std(0).mean() / (t[:, 2] - t[:, 0]).mean())


def steps_to_reach(steps: np.ndarray, accuracy: np.ndarray, target: float) -> float:
  """The first of `steps` (E,) at which `accuracy` (E,) >= target; inf when never."""
  hits = np.nonzero(accuracy >= target)[0]
  return float(steps[hits[0]]) if len(hits) else math.inf


def largest_training_rate(rates, accuracy, chance: float) -> float:
  """The largest of `rates` whose accuracy (`accuracy[i]` belongs to `rates[i]`) is at least
  halfway from `chance` to the best of `accuracy`."""
  bar = 0.5 * (chance + max(accuracy))
  return max(r for r, a in zip(rates, accuracy, strict=True) if a >= bar)


def _model(config, norm: str, dropout_rate: float = 0.0):
  return create(
    "mlp",
    num_classes=10,
    depth=config.depth,
    width=config.width,
    activation="sigmoid",
    norm=norm,
    dropout_rate=dropout_rate,
    kernel_init="xavier_normal",
  )


def _percentile_probe(model, norm: str, probe_x, config):
  """variables -> the 15/50/85th percentiles (3,) of a last-hidden-layer sigmoid's input over
  `probe_x`: the BN output with BN, the dense output without."""
  layer = f"norm_{config.depth - 1}" if norm == "batch" else f"dense_{config.depth - 1}"

  def probe(variables):
    # train=True: the sigmoid's input as training sees it (BN with the batch's statistics);
    # the updated running statistics are discarded
    _, state = model.apply(
      variables,
      probe_x,
      train=True,
      mutable=["intermediates", "batch_stats"],
      capture_intermediates=lambda m, _: m.name == layer,
    )
    z = state["intermediates"][layer]["__call__"][0][:, config.unit]
    return jax.numpy.percentile(z, jax.numpy.asarray(PERCENTILES))

  return probe


def _rate_arm(config, train, val) -> dict:
  """{data key: [validation accuracy after lr_steps at each of lr_rates]}."""
  return {
    key: [
      float(
        _fit.fit_config(
          config,
          _model(config, norm),
          optim.sgd(rate),
          train,
          val,
          steps=config.lr_steps,
          eval_every=config.lr_steps,
        ).val_accuracy[-1]
      )
      for rate in config.lr_rates
    ]
    for key, norm in NORMS.items()
  }


def _dropout_arm(config, train, val) -> dict:
  """{data key: validation accuracy curve (E',) with dropout, evaluated every eval_every steps
  for dropout_steps}."""
  return {
    key: _fit.fit_config(
      config,
      _model(config, norm, config.dropout_rate),
      optim.sgd(config.learning_rate),
      train,
      val,
      steps=config.dropout_steps,
    ).val_accuracy.tolist()
    for key, norm in NORMS.items()
  }


def run(config: ml_collections.ConfigDict) -> FigureResult:
  name, train, val, test = _fit.load_data(
    config.dataset,
    max_train=config.max_train,
    max_val=config.max_val,
    max_test=config.max_test,
    seed=config.seed,
  )
  probe_x = jax.numpy.asarray(val[0][: config.probe_size])
  results = {}
  for key, norm in NORMS.items():
    model = _model(config, norm)
    results[key] = _fit.fit_config(
      config,
      model,
      optim.sgd(config.learning_rate),
      train,
      val,
      test=test,
      probe=_percentile_probe(model, norm, probe_x, config),
    )
  plain, bn = results["no_bn"], results["bn"]
  steps = bn.eval_steps
  # faster: BN's first evaluation at no-BN's final validation accuracy, as a fraction of the run
  reach = steps_to_reach(steps, bn.val_accuracy, float(plain.val_accuracy[-1]))
  final_test = {k: r.final_test["accuracy"] for k, r in results.items()}
  drifts = {k: drift(np.asarray(r.probes), config.settle) for k, r in results.items()}
  # a finding, not a check: whether BN stays above no-BN at every evaluation after `settle`
  early = max(1, int(round(config.settle * (len(steps) - 1))))
  gap = bn.val_accuracy[early:] - plain.val_accuracy[early:]
  # the learning-rate arm, beside the main runs at `learning_rate` after lr_steps steps
  rates = (config.learning_rate, *config.lr_rates)
  if config.lr_steps not in steps:
    raise ValueError(
      f"lr_steps={config.lr_steps} is not an evaluation step of the main runs; choose a "
      f"multiple of eval_every={config.eval_every} up to steps={config.steps}"
    )
  at_lr_steps = int(np.nonzero(steps == config.lr_steps)[0][0])
  rate_accuracy = {
    k: [float(results[k].val_accuracy[at_lr_steps]), *acc]
    for k, acc in _rate_arm(config, train, val).items()
  }
  largest_rate = {
    k: largest_training_rate(rates, acc, chance=0.1) for k, acc in rate_accuracy.items()
  }
  dropout_curves = _dropout_arm(config, train, val)
  within = steps <= config.dropout_steps
  best_within = {
    k: {
      "without_dropout": float(results[k].val_accuracy[within].max()),
      "with_dropout": float(max(dropout_curves[k])),
    }
    for k in NORMS
  }
  dropout_gain = {k: v["with_dropout"] - v["without_dropout"] for k, v in best_within.items()}
  checks = [
    check(
      "faster: first step at which BN's validation accuracy reaches no-BN's final one "
      f"({plain.val_accuracy[-1]:.4f}), as a fraction of the {config.steps} steps",
      reach / config.steps,
      "< 1 (BN gets there first)",
      reach < config.steps,
    ),
    check_greater(
      "higher: test accuracy of the final parameters BN - no BN (test evaluated once, at the end)",
      final_test["bn"] - final_test["no_bn"],
      0.0,
    ),
    check_less(
      "more stable: percentile drift of a last-layer sigmoid input with BN / without BN",
      drifts["bn"] / drifts["no_bn"],
      1.0,
    ),
    check_greater(
      "larger learning rate (notes 000 ~556, Ioffe & Szegedy Sec. 3.3 / 4.2.1): the largest rate "
      f"of {rates} that trains (validation accuracy after {config.lr_steps} steps at least "
      "halfway from chance to the network's best over the rates), BN's / no BN's",
      largest_rate["bn"] / largest_rate["no_bn"],
      1.0,
    ),
    check(
      f"no dropout needed (notes 000 ~556, Ioffe & Szegedy Sec. 4.2.1): BN's best validation "
      f"accuracy within {config.dropout_steps} steps, with dropout {config.dropout_rate:g} - "
      "without",
      dropout_gain["bn"],
      "<= 0",
      dropout_gain["bn"] <= 0.0,
    ),
  ]
  backward_error, printed_error = bn_backward_errors()
  checks.append(
    check_less(
      "BN's backward formulas (notes 000 ~546-548, with (z_i - mu_B) in dDiv/dsigma^2) by hand "
      "vs autodiff: largest |difference| of dDiv/dz, dgamma, dbeta, dmu, dsigma^2 (float64)",
      backward_error,
      1e-9,
    )
  )
  data = {
    "dataset": name,
    "train_examples": int(len(train[0])),
    "steps": steps.tolist(),
    "validation_accuracy": {k: r.val_accuracy.tolist() for k, r in results.items()},
    "final_test_accuracy": final_test,
    "bn_steps_to_no_bn_final_accuracy": reach,
    # finding: BN - no BN at each evaluation after the first `settle` of the steps
    "min_gap_after_settle": {"after_step": int(steps[early]), "min": float(gap.min())},
    "final_validation_gap": float(bn.val_accuracy[-1] - plain.val_accuracy[-1]),
    "percentiles": {k: np.asarray(r.probes).tolist() for k, r in results.items()},
    "drift": drifts,
    "learning_rate_arm": {
      "rates": list(rates),
      "steps": config.lr_steps,
      "final_validation_accuracy": rate_accuracy,
      "largest_rate_that_trains": largest_rate,
    },
    "dropout_arm": {
      "rate": config.dropout_rate,
      "steps": config.dropout_steps,
      "validation_accuracy": dropout_curves,
      "best_validation_accuracy": best_within,
      "gain": dropout_gain,
    },
    "backward": {
      "max_abs_error": backward_error,
      "notes_printed_dvar_relative_error": printed_error,
    },
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def bn_backward_by_hand(z, gamma, beta, dy, eps=1e-5) -> dict:
  """BN's gradients by the formulas of the module docstring. z, dy: (B, C); gamma, beta: (C,).

  Returns {'z', 'gamma', 'beta', 'mu', 'var', 'var_as_printed'} (float64 arrays): dDiv/dz
  (B, C), dDiv/dgamma, dDiv/dbeta, dDiv/dmu_B, dDiv/dsigma_B^2 (C,) and the notes' printed
  dDiv/dsigma_B^2 (without (z_i - mu_B)), for Div = sum_i dy_i . y_i.
  """
  del beta
  n = z.shape[0]
  mu, var = z.mean(0), z.var(0)
  inv = 1.0 / np.sqrt(var + eps)
  u = (z - mu) * inv
  du = dy * gamma
  d_var = -0.5 * inv**3 * (du * (z - mu)).sum(0)
  d_mu = -inv * du.sum(0) + d_var * (-2.0 / n) * (z - mu).sum(0)
  d_z = du * inv + d_var * 2.0 * (z - mu) / n + d_mu / n
  return {
    "z": d_z,
    "gamma": (dy * u).sum(0),
    "beta": dy.sum(0),
    "mu": d_mu,
    "var": d_var,
    "var_as_printed": -0.5 * inv**3 * du.sum(0),
  }


def bn_backward_errors(seed: int = 0, batch: int = 16, units: int = 5, eps: float = 1e-5):
  """Largest |by hand - autodiff| of BN's gradients (float64), and the relative error of the
  notes' printed dDiv/dsigma^2. dDiv/dmu and dDiv/dsigma^2 come from autodiff of BN written as
  a function of (z, mu, var) at mu = mean(z), var = var(z)."""
  rng = np.random.default_rng(seed)
  z = rng.normal(1.0, 2.0, (batch, units))
  gamma, beta, dy = rng.normal(size=units), rng.normal(size=units), rng.normal(size=(batch, units))
  hand = bn_backward_by_hand(z, gamma, beta, dy, eps)
  with jax.enable_x64(True):
    jnp = jax.numpy

    def bn(z, gamma, beta, mu, var):
      return gamma * (z - mu) / jnp.sqrt(var + eps) + beta

    def div(z, gamma, beta):
      return jnp.sum(jnp.asarray(dy) * bn(z, gamma, beta, z.mean(0), z.var(0)))

    def div_stats(mu, var):  # Div through mu_B and sigma_B^2 only (z held fixed)
      return jnp.sum(jnp.asarray(dy) * bn(jnp.asarray(z), jnp.asarray(gamma), 0.0, mu, var))

    auto = jax.grad(div, argnums=(0, 1, 2))(jnp.asarray(z), jnp.asarray(gamma), jnp.asarray(beta))
    d_mu, d_var = jax.grad(div_stats, argnums=(0, 1))(jnp.asarray(z.mean(0)), jnp.asarray(z.var(0)))
    auto = {"z": auto[0], "gamma": auto[1], "beta": auto[2], "mu": d_mu, "var": d_var}
    auto = {k: np.asarray(v) for k, v in auto.items()}
  worst = max(float(np.abs(hand[k] - auto[k]).max()) for k in auto)
  printed = float(np.abs(hand["var_as_printed"] - auto["var"]).max() / np.abs(auto["var"]).max())
  return worst, printed


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  steps = np.asarray(d["steps"])
  fig, axes = common.subplots(1, 4, figsize=(21, 4.3), title=TITLE)
  test = d["final_test_accuracy"]
  acc = d["validation_accuracy"]
  arm = d["dropout_arm"]
  drop_steps = steps[: len(arm["validation_accuracy"]["bn"])]
  for key, label, style in (("no_bn", "without BN", "--"), ("bn", "with BN", "-")):
    line = axes[0].plot(steps, acc[key], style, label=f"{label} (final test {test[key]:.3f})")
    axes[0].plot(
      drop_steps,
      arm["validation_accuracy"][key],
      ":",
      color=line[0].get_color(),
      label=f"{label}, dropout {arm['rate']:g}",
    )
  axes[0].set(
    xlabel="training step",
    ylabel=f"validation accuracy ({d['dataset']})",
    title="(a) validation accuracy",
    ylim=(0.5, 1.0),
  )
  axes[0].legend(fontsize=8)
  for ax, key, label in ((axes[1], "no_bn", "(b) without BN"), (axes[2], "bn", "(c) with BN")):
    p = np.asarray(d["percentiles"][key])
    for k, q in enumerate(PERCENTILES):
      ax.plot(steps, p[:, k], label=f"{q:g}th percentile")
    ax.set(
      xlabel="training step",
      ylabel="input to a last-hidden-layer sigmoid",
      title=f"{label}: drift {d['drift'][key]:.3f}",
    )
    ax.legend(fontsize=8)
  lo = min(np.min(d["percentiles"]["bn"]), np.min(d["percentiles"]["no_bn"]))
  hi = max(np.max(d["percentiles"]["bn"]), np.max(d["percentiles"]["no_bn"]))
  for ax in axes[1:3]:
    ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
  rates = d["learning_rate_arm"]
  for key, label, style in (("no_bn", "without BN", "o--"), ("bn", "with BN", "o-")):
    axes[3].plot(rates["rates"], rates["final_validation_accuracy"][key], style, label=label)
  axes[3].set(
    xscale="log",
    xlabel="learning rate",
    ylabel=f"validation accuracy after {rates['steps']} steps",
    title="(d) larger learning rates",
    ylim=(0.0, 1.0),
  )
  axes[3].legend(fontsize=8)
  return [common.save_figure(fig, out_dir, NAME)]
