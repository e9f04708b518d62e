"""Vanishing gradients with sigmoid / tanh vs ReLU; exploding gradients and clipping.

Notes 003 and slides 82-87 of 004: back-propagating through a layer multiplies the gradient by
W^T and by the activation's derivative, so the parameters far from the output get derivatives
near 0 and barely move ("梯度消失", 003). The sigmoid's derivative is at most 1/4, tanh's at
most 1 but below 1 off zero ("与sigmoid类似，局部梯度特性不利于网络梯度流的反向传递"), ReLU's
exactly 1 on active units. When the weights are too large the same product grows instead
(exploding gradients, the "cliffs" of notes 002 ~100 and slide 87) and one step can throw the
parameters far away; clipping bounds the step ("把沿梯度方向前进的步长限制在某个值内", slide 87;
notes 000 ~518, 001): with the global gradient norm clipped to c every SGD step is at most
learning_rate * c.

Glorot & Bengio (2010), Sect. 4.2 and Fig. 7: in the linear regime of a symmetric activation
the back-propagated gradient of layer i's pre-activation s^i obeys

    Var[dC/ds^i] = Var[dC/ds^d] prod_{i < j <= d} n_j Var[W^j]     (n_j: the width W^j maps from)

so under their standard initialization W ~ U[-1/sqrt(n), 1/sqrt(n)] (n Var W = 1/3) it shrinks
by sqrt(3) per layer toward the input (Fig. 7 top), while under the normalized (Xavier)
initialization, n Var W = 1 for square layers, it stays about level (Fig. 7 bottom). Between
layer 10 and layer 1 of our square layers: RMS ratio 3^-4.5 = 0.0071 standard, 1 normalized.

What we measure, on the full Fashion-MNIST training split (55,000 images after the 5,000
validation images are held out), 10 hidden layers of 64 units (`research.models.create('mlp')`):

* at initialization (Glorot & Bengio's Fig. 7 setting), the back-propagated gradient of every
  layer over 1,000 training images: per example, dC_x/ds^l equals the gradient of that
  example's loss with respect to layer l's bias, so we take the per-example bias gradients
  (jax.vmap of jax.grad) and their RMS over examples and units; for sigmoid (Xavier), tanh
  (Glorot's standard and Xavier) and ReLU (He);
* training (`research.optim.sgd` at Glorot & Bengio's mini-batch 10, learning rate 0.05, 5,500
  steps: one epoch) of the sigmoid, tanh (Xavier) and ReLU (He) nets from those same initial
  weights: the gradient norm of each layer's weights, averaged over the first 20 steps (the notes'
  "far parameters' derivatives"), and the training loss;
* a 6-layer ReLU net with N(0, 1) weights (exploding), 100 SGD steps with and without
  `research.optim.clip_by_global_norm(c)`: the norm of every update;
* notes 002's long-term dependencies: |W^t v| of one matrix W applied t times (NumPy), which
  grows or vanishes with W's largest eigenvalue modulus (1.1 or 0.9).

Reductions from Glorot & Bengio: width 64 instead of 1,000, 10 hidden layers instead of 5 (the
notes' deep net; the formula holds at any depth), Fashion-MNIST instead of Shapeset, one epoch;
nothing is chosen, no test split (a figure about gradients and optimization speed).
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check, check_close, check_greater, check_less
from research import optim
from research.models import create, losses

NAME = "vanishing_gradients"
TITLE = "Per-layer gradients: sigmoid vanishes, ReLU holds; Glorot's standard init shrinks them"
CAPTION = (
  "Left: RMS of the back-propagated gradient dC/ds of each layer of a 10-hidden-layer MLP at "
  "initialization, over 1,000 Fashion-MNIST training images: through sigmoid layers it "
  "vanishes toward the input, tanh with Glorot's standard initialization shrinks by about "
  "sqrt(3) per layer as their linear-regime formula predicts, tanh with Xavier's and ReLU with "
  "He's stay about level. Second: the gradient norm of each layer's weights over the first SGD "
  "steps (mini-batch 10). Third: training loss of the same runs. Right: a ReLU net with "
  "too-large N(0, 1) weights has exploding gradients; the norm of each SGD step with and "
  "without clipping the global gradient norm to c (bound learning_rate * c)."
)
PAPER = common.Paper(
  source=(
    "Glorot & Bengio 2010, Sect. 4.2 and Fig. 7 (back-propagated gradients per layer); notes "
    "003 and 004 slides 82-87 (vanishing / exploding gradients, clipping)"
  ),
  setup=(
    "5-hidden-layer tanh MLPs of 1,000 units at initialization, standard U[-1/sqrt(n), "
    "1/sqrt(n)] vs normalized initialization (Shapeset); the notes: deep sigmoid nets"
  ),
  number=(
    "with the standard initialization the back-propagated gradients shrink from the top layer "
    "toward the input, Var[dC/ds^i] scaling as (n Var W)^(d - i) = 3^-(d - i) in the linear "
    "regime, and stay about level with the normalized one; the notes: through sigmoid layers the "
    "derivatives of the far parameters vanish, ReLU keeps them, and clipping bounds the step "
    "when gradients explode"
  ),
)

TRAINED = {"sigmoid": "xavier_normal", "tanh": "xavier_normal", "relu": "he_normal"}
# Glorot & Bengio's standard initialization U[-1/sqrt(n), 1/sqrt(n)], n = fan_in: Var = 1/(3n)
STANDARD_INIT = "heuristic_uniform"  # research.models.initializers
AT_INIT = {
  "sigmoid": ("sigmoid", "xavier_normal"),
  "tanh_standard": ("tanh", STANDARD_INIT),
  "tanh": ("tanh", "xavier_normal"),
  "relu": ("relu", "he_normal"),
}


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist_idx"
  config.max_train = None  # all 55,000 training images (validation held out)
  config.max_val = None  # all 5,000 validation images
  config.depth = 10
  config.width = 64
  config.batch_size = 10
  config.steps = 5500  # one epoch of 55,000 images at batch 10
  config.eval_every = 550
  config.learning_rate = 0.05
  config.early_steps = 20  # weight-gradient norms averaged over these first steps
  config.probe_size = 1000  # training images for the back-propagated gradients at init
  config.exploding_depth = 6
  config.exploding_steps = 100
  config.exploding_learning_rate = 1e-3
  config.clip_norm = 1.0
  config.seed = 0
  return common.sized(
    size,
    config,
    test={
      "max_train": 5000,
      "max_val": 1000,
      "steps": 500,
      "eval_every": 50,
      "exploding_steps": 20,
    },
    full={"width": 1000, "steps": 55_000, "eval_every": 2750},
  )


def backprop_rms(model, variables, x, y, depth: int) -> np.ndarray:
  """RMS over examples and units of dC_x/ds^l for the hidden layers l = 1..depth. (depth,)

  For one example x the gradient of its loss C_x with respect to the bias of 'dense_l' is
  dC_x/ds^l (s^l = W^l h^(l-1) + b^l), so the per-example bias gradients are the
  back-propagated gradients.
  """
  params = variables["params"]
  names = [f"dense_{i}" for i in range(depth)]

  def example_loss(biases, xi, yi):
    p = {**params, **{n: {**params[n], "bias": biases[n]} for n in names}}
    logits = model.apply({"params": p}, xi[None], train=False)
    return losses.softmax_cross_entropy(logits, yi[None])

  per_example = jax.jit(jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0)))
  grads = per_example({n: params[n]["bias"] for n in names}, jnp.asarray(x), jnp.asarray(y))
  return np.asarray([jnp.sqrt(jnp.mean(grads[n] ** 2)) for n in names])


RADII = (0.9, 1.1)  # spectral radii of the repeated matrix W (notes 002 ~106-112)


def matrix_powers(seed: int, n: int = 64, steps: int = 200) -> dict:
  """|W^t v| for t = 0..steps, v a random unit vector, W = (random n x n Gaussian) scaled to
  each spectral radius in RADII, and the fitted per-step growth over t in [steps/2, steps]:
  with W = V diag(lambda) V^-1, W^t = V diag(lambda^t) V^-1, so the largest |lambda_i| sets it."""
  rng = np.random.default_rng(seed)
  base = rng.normal(size=(n, n))
  base /= np.max(np.abs(np.linalg.eigvals(base)))
  v = rng.normal(size=n)
  norms, rates = {}, []
  for rho in RADII:
    w, x, out = rho * base, v / np.linalg.norm(v), [1.0]
    for _ in range(steps):
      x = w @ x
      out.append(float(np.linalg.norm(x)))
    t = np.arange(steps // 2, steps + 1)
    rates.append(float(np.exp(np.polyfit(t, np.log(np.asarray(out)[t]), 1)[0])))
    norms[str(rho)] = out
  return {"norms": norms, "rates": rates}


def run(config: ml_collections.ConfigDict) -> FigureResult:
  # curves on the validation set held out of the training split; nothing is chosen, no test
  data = _fit.load_data(
    config.dataset, max_train=config.max_train, max_val=config.max_val, seed=config.seed
  )
  x_probe = data.train[0][: config.probe_size]
  y_probe = data.train[1][: config.probe_size]
  key = jax.random.PRNGKey(config.seed)
  models, initial, backprop = {}, {}, {}
  for case, (act, init) in AT_INIT.items():
    models[case] = create(
      "mlp",
      num_classes=10,
      depth=config.depth,
      width=config.width,
      activation=act,
      kernel_init=init,
    )
    initial[case] = models[case].init(key, jnp.asarray(x_probe[:1]), train=False)
    backprop[case] = backprop_rms(models[case], initial[case], x_probe, y_probe, config.depth)
  bp_ratio = {c: float(v[0] / v[-1]) for c, v in backprop.items()}
  linear_regime = 3.0 ** (-(config.depth - 1) / 2)  # (n Var W)^((d - 1) / 2), n Var W = 1/3

  runs = {
    act: _fit.fit_config(
      config,
      models[act],
      optim.sgd(config.learning_rate),
      data.train,
      data.validation,
      per_layer_grads=True,
      variables=initial[act],
    )
    for act in TRAINED
  }
  norms = {
    a: r.layer_grad_norms[: config.early_steps, _fit.dense_layers(r)].mean(0)
    for a, r in runs.items()
  }
  ratio = {a: float(n[0] / n[-1]) for a, n in norms.items()}

  exploding = create(
    "mlp",
    num_classes=10,
    depth=config.exploding_depth,
    width=config.width,
    activation="relu",
    kernel_init="normal_1",
  )
  lr, c = config.exploding_learning_rate, config.clip_norm
  plain, clipped = (
    _fit.fit(
      exploding,
      tx,
      data.train,
      data.validation,
      batch_size=config.batch_size,
      steps=config.exploding_steps,
      seed=config.seed,
      eval_every=config.exploding_steps,
    )
    for tx in (optim.sgd(lr), optax.chain(optim.clip_by_global_norm(c), optim.sgd(lr)))
  )
  checks = [
    check_close(
      "Glorot's standard init (tanh), at init: back-propagated gradient RMS layer 1 / layer "
      f"{config.depth} vs the linear regime's 3^-{(config.depth - 1) / 2:g}",
      bp_ratio["tanh_standard"],
      linear_regime,
      rtol=0.5,
    ),
    check_greater(
      "at init: back-propagated ratio layer 1 / layer 10, tanh normalized (Xavier) / standard "
      "(normalized stays about level)",
      bp_ratio["tanh"] / bp_ratio["tanh_standard"],
      10.0,
    ),
    check(
      "at init: back-propagated ratio layer 1 / layer 10, sigmoid < tanh (Xavier) < ReLU (He)",
      [bp_ratio["sigmoid"], bp_ratio["tanh"], bp_ratio["relu"]],
      "increasing",
      bp_ratio["sigmoid"] < bp_ratio["tanh"] < bp_ratio["relu"],
    ),
    check_less(
      "sigmoid: weight-gradient norm layer 1 / layer 10, first steps (vanishes)",
      ratio["sigmoid"],
      1e-3,
    ),
    check_greater(
      "ReLU (He): weight-gradient norm layer 1 / layer 10, first steps (holds)", ratio["relu"], 0.2
    ),
    check_greater(
      "final training loss, sigmoid minus ReLU (sigmoid trains slower)",
      float(runs["sigmoid"].train_loss[-1] - runs["relu"].train_loss[-1]),
      0.2,
    ),
    check_greater(
      "N(0,1) ReLU net: step-0 gradient norm (exploding)", float(plain.grad_norm[0]), 100.0 * c
    ),
    check_close(
      "clipped step 0: update norm = learning_rate * c",
      float(clipped.update_norm[0]),
      lr * c,
      rtol=1e-4,
    ),
    check_less(
      "clipped: largest update norm over all steps / (learning_rate * c)",
      float(np.nanmax(clipped.update_norm) / (lr * c)),
      1.0 + 1e-4,
    ),
    check_greater(
      "unclipped: largest update norm / (learning_rate * c)",
      float(np.nanmax(plain.update_norm) / (lr * c)),
      100.0,
    ),
  ]
  powers = matrix_powers(config.seed)
  checks.append(
    check(
      "notes 002 ~106-112 (long-term dependencies): a path that multiplies by the same W t "
      "times; per-step growth of |W^t v| over t in [100, 200] for random 64 x 64 W with "
      "spectral radius 0.9 and 1.1",
      powers["rates"],
      "each within 1% of its spectral radius (below 1 vanishes, above 1 explodes)",
      all(abs(r / rho - 1.0) < 0.01 for r, rho in zip(powers["rates"], RADII, strict=True)),
    )
  )
  data_out = {
    "matrix_powers": powers,
    "dataset": data.name,
    "train_size": len(data.train[0]),
    "backprop_rms": {c: v.tolist() for c, v in backprop.items()},
    "backprop_first_over_last": bp_ratio,
    "linear_regime_ratio": linear_regime,
    "steps": runs["relu"].eval_steps.tolist(),
    "layer_grad_norms": {a: n.tolist() for a, n in norms.items()},
    "first_over_last": ratio,
    "train_loss": {a: r.train_loss.tolist() for a, r in runs.items()},
    "update_norm_plain": plain.update_norm.tolist(),  # inf / nan once it diverges
    "update_norm_clipped": clipped.update_norm.tolist(),
    "grad_norm_plain": plain.grad_norm.tolist(),
    "step_bound": lr * c,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data_out, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  fig, axes = common.subplots(1, 4, figsize=(21, 4.3), title=TITLE)
  labels = {
    "sigmoid": "sigmoid (Xavier)",
    "tanh_standard": "tanh (Glorot's standard)",
    "tanh": "tanh (Xavier)",
    "relu": "ReLU (He)",
  }
  for case, g in d["backprop_rms"].items():
    layers = np.arange(1, len(g) + 1)
    axes[0].semilogy(
      layers,
      np.asarray(g) / g[-1],
      "o-",
      ms=3,
      label=f"{labels[case]}: {d['backprop_first_over_last'][case]:.1e}",
    )
  layers = np.arange(1, len(d["backprop_rms"]["relu"]) + 1)
  axes[0].semilogy(
    layers, 3.0 ** (-(layers[-1] - layers) / 2), "k:", label="3^-(10 - l)/2 (linear regime)"
  )
  for a, g in d["layer_grad_norms"].items():
    axes[1].semilogy(
      np.arange(1, len(g) + 1), g, "o-", ms=3, label=f"{labels[a]}: {d['first_over_last'][a]:.1e}"
    )
    axes[2].plot(d["steps"], d["train_loss"][a], "o-", ms=3, label=labels[a])
  axes[0].set(
    xlabel="hidden layer l (1 = nearest the input)",
    ylabel="RMS dC/ds^l / that of layer 10",
    title="Back-propagated gradients at initialization",
  )
  axes[1].set(
    xlabel="hidden layer (1 = nearest the input)",
    ylabel="gradient norm of W_l",
    title="Weight gradients, first SGD steps",
  )
  axes[2].set(
    xlabel="SGD step (batch 10)",
    ylabel=f"training loss ({d['dataset']})",
    title="Training loss, 10-layer MLP",
  )
  steps = np.arange(len(d["update_norm_plain"]))
  plain = np.asarray(d["update_norm_plain"], dtype=float)
  finite = np.isfinite(plain)
  note = "" if finite.all() else f" (non-finite from step {int(np.argmin(finite))})"
  axes[3].semilogy(steps, plain, label="no clipping" + note)
  axes[3].semilogy(steps, d["update_norm_clipped"], label="clip global norm to c")
  axes[3].axhline(d["step_bound"], color="gray", ls=":", label="learning_rate * c")
  axes[3].set(
    xlabel="SGD step",
    ylabel="update norm ||x_{k+1} - x_k||",
    title="Exploding gradients: step sizes",
  )
  for ax in axes:
    ax.legend(fontsize=7)
  return [common.save_figure(fig, out_dir, NAME)]
