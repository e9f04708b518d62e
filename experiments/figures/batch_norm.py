"""Ioffe & Szegedy 2015, Fig. 1: a 3 x 100 sigmoid MLP trained with and without batch norm.

The paper's setup: 28x28 inputs, 3 fully connected hidden layers of 100 sigmoid units, batch 60,
50,000 steps on MNIST; (a) test accuracy against steps with and without BN, (b, c) the 15th, 50th
and 85th percentiles of one last-hidden-layer sigmoid's input over training. With BN the
accuracy rises faster and higher and the input distribution is stable; without BN it drifts.
Here the curve of (a) is the validation accuracy (the validation set held out of the training
split, `_fit.load_data`: the split one watches during training), and the test split is
evaluated once, on the final parameters of each network (nothing is chosen on either).

Default: the same network and batch on Fashion-MNIST (Debian's dataset-fashion-mnist; digits when
absent) for a few thousand steps; `--full`: the paper's MNIST (TFDS 'mnist') and 50k steps.
The BN network is `research.models.create('mlp', norm='batch')` (normalization before the
sigmoid, as in the paper); the optimizer is `research.optim.sgd`.

Stability measure (ours): for each percentile track p_k(t), k in {15, 50, 85}, evaluated on a
fixed batch of held-out images (normalized with that batch's own statistics, as in training),
after the first `settle` fraction of training,

    drift = mean_k std_t(p_k(t)) / mean_t(p_85(t) - p_15(t)),

the fluctuation of the percentiles relative to the distribution's own width (scale-free).

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

import pathlib

import jax
import ml_collections
import numpy as np

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check_greater, check_less
from research import optim
from research.models import create

NAME = "batch_norm"
TITLE = "Batch norm (Ioffe & Szegedy Fig. 1): 3 x 100 sigmoid MLP, batch 60, with vs without BN"
CAPTION = (
  "(a) Validation accuracy of a 3-hidden-layer, 100-unit sigmoid MLP trained with SGD at batch 60, "
  "with and without batch normalization. (b, c) The 15th, 50th and 85th percentiles of the "
  "input to one sigmoid of the last hidden layer, over a fixed batch of held-out images, during "
  "training: with BN they stay put, without BN they drift."
)
PAPER = common.Paper(
  source='Ioffe & Szegedy 2015, "Batch Normalization", Fig. 1',
  setup="MNIST, 3 fully connected hidden layers of 100 sigmoid units, batch 60, 50,000 steps",
  number=(
    "with BN the test accuracy is higher and rises faster, and the distribution of a "
    "last-hidden-layer sigmoid input stays stable during training (its 15th / 50th / 85th "
    "percentiles), while without BN it drifts"
  ),
)

PERCENTILES = (15.0, 50.0, 85.0)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist_idx"
  config.width = 100
  config.depth = 3
  config.batch_size = 60
  config.steps = 3000
  config.eval_every = 100
  config.learning_rate = 0.1
  config.max_train = 20_000
  config.max_val = 5000  # validation images (held out of the training split)
  config.max_test = 5000  # test images, evaluated once at the end
  config.probe_size = 1000
  config.unit = 0
  config.settle = 0.1
  config.seed = 0
  return common.sized(
    size,
    config,
    test={"steps": 600, "eval_every": 60, "max_train": 10_000, "max_val": 2000, "max_test": 2000},
    full={
      "dataset": "mnist",
      "steps": 50_000,
      "eval_every": 500,
      "max_train": None,
      "max_val": None,
      "max_test": None,
    },
  )


def drift(tracks: np.ndarray, settle: float) -> float:
  """tracks (E, 3): percentiles 15/50/85 over time; see the module docstring."""
  t = tracks[int(round(settle * (len(tracks) - 1))) :]
  return float(t.std(0).mean() / (t[:, 2] - t[:, 0]).mean())


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
  for norm in ("none", "batch"):
    model = create(
      "mlp",
      num_classes=10,
      depth=config.depth,
      width=config.width,
      activation="sigmoid",
      norm=norm,
      kernel_init="xavier_normal",
    )
    # the sigmoid's input: the BN output with BN, the dense output without
    layer = f"norm_{config.depth - 1}" if norm == "batch" else f"dense_{config.depth - 1}"

    def probe(variables, model=model, layer=layer):
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

    results[norm] = _fit.fit_config(
      config,
      model,
      optim.sgd(config.learning_rate),
      train,
      val,
      test=test,
      probe=probe,
    )
  plain, bn = results["none"], results["batch"]
  early = max(1, int(round(config.settle * (len(bn.eval_steps) - 1))))
  gap = bn.val_accuracy[early:] - plain.val_accuracy[early:]
  drifts = {k: drift(np.asarray(r.probes), config.settle) for k, r in results.items()}
  final_test = {"bn": bn.final_test["accuracy"], "no_bn": plain.final_test["accuracy"]}
  checks = [
    check_greater(
      f"min over evaluations after step {int(bn.eval_steps[early])}: validation accuracy "
      "BN - no BN",
      float(gap.min()),
      0.0,
    ),
    check_greater(
      "test accuracy of the final parameters BN - no BN (test evaluated once, at the end)",
      final_test["bn"] - final_test["no_bn"],
      0.0,
    ),
    check_less(
      "percentile drift with BN / without BN (lower = more stable)",
      drifts["batch"] / drifts["none"],
      0.5,
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
    "steps": bn.eval_steps.tolist(),
    "validation_accuracy": {"bn": bn.val_accuracy.tolist(), "no_bn": plain.val_accuracy.tolist()},
    "final_test_accuracy": final_test,
    "percentiles": {
      "bn": np.asarray(bn.probes).tolist(),
      "no_bn": np.asarray(plain.probes).tolist(),
    },
    "drift": {"bn": drifts["batch"], "no_bn": drifts["none"]},
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
  fig, axes = common.subplots(1, 3, figsize=(16, 4.3), title=TITLE)
  test = d["final_test_accuracy"]
  acc = d["validation_accuracy"]
  axes[0].plot(steps, acc["no_bn"], "--", label=f"without BN (final test {test['no_bn']:.3f})")
  axes[0].plot(steps, acc["bn"], label=f"with BN (final test {test['bn']:.3f})")
  axes[0].set(
    xlabel="training step",
    ylabel=f"validation accuracy ({d['dataset']})",
    title="(a) validation accuracy",
  )
  axes[0].legend()
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
  for ax in axes[1:]:
    ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
  return [common.save_figure(fig, out_dir, NAME)]
