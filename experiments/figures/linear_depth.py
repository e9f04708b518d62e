"""Why a network needs nonlinear activations, and what more hidden units buy.

Notes 004, "全连接神经网络与线性不可分" (~327-411): a linear classifier f(x, W) = W x + b can only
separate classes that are linearly separable (线性可分: some line splits them with no error),
while the two-layer network f = W2 max(0, W1 x + b1) + b2 can also separate data that are not.
XOR is the smallest example: no line puts (0, 0), (1, 1) on one side and (0, 1), (1, 0) on the
other, so the best line gets 3 of the 4 points right.

Notes 004 ~722-728: without activation functions a fully connected network is a linear
classifier again,

    f = W3 (W2 (W1 x + b1) + b2) + b3 = W3 W2 W1 x + (W3 W2 b1 + W3 b2 + b3) = W' x + b'.

Notes 004 ~916-932 ("网络结构设计"): the more neurons, the more complex the decision boundary
can be, and the better the network classifies its training set (which is not the same as
classifying well in the real world: overfitting).

We measure: (a) the best accuracy any line reaches on XOR (an exact sweep over every
combinatorially distinct line), a logistic regression trained with `research.optim.adam`, and a
2-layer ReLU MLP (`research.models.create('mlp')`); (b) a network of 3 dense layers with identity
activations against its single affine map W' x + b', at its random initialization (random
biases too) and after training on two interleaved spirals, and its accuracy against the best
line's; (c) 2-layer ReLU MLPs of 2, 8 and 64 hidden units on the spirals: their decision
regions on a grid, the boundary length and the number of linear pieces of the boundary (distinct
ReLU on/off patterns along it: within one pattern the network is affine, so the boundary there
is one straight piece).
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.figures import common
from experiments.figures.common import FigureResult, check, check_less
from research import optim
from research.models import create, initializers
from research.models.losses import softmax_cross_entropy

NAME = "linear_depth"
TITLE = (
  "Linear separability, the collapse of activation-free depth, and width vs boundary complexity"
)
CAPTION = (
  "Top left: XOR. No line classifies more than 3 of the 4 points; a 2-layer ReLU MLP gets all "
  "4. Top middle: a network of 3 dense layers with identity activations, trained on two "
  "spirals, is one affine map W'x + b' (W' = W3 W2 W1): its decision boundary is a straight "
  "line and its accuracy does not exceed the best line's. Top right: accuracies on the "
  "spirals. Bottom: 2-layer ReLU MLPs with 2, 8 and 64 hidden units: more units give a "
  "longer boundary made of more linear pieces and a higher training accuracy."
)
PAPER = common.Paper(
  source="the lecture, notes 004 ~327-411, ~722-728, ~916-932",
  setup=(
    "linear classifier W x + b vs the 2-layer net W2 max(0, W1 x + b1) + b2 on linearly "
    "inseparable data; a net with its activations removed; nets with more and more neurons"
  ),
  number=(
    "线性不可分 data need the nonlinear net; without activations f = W'x + b' is a linear "
    "classifier; more neurons, more complex boundary and stronger training-set classification"
  ),
)

XOR_X = np.asarray([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
XOR_Y = np.asarray([0, 0, 1, 1])
COLLAPSE_TOLERANCE = 1e-5  # float32 forward pass vs the float64 composed map


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.points_per_class = 100
  config.turns = 2.0  # of each spiral arm
  config.noise = 0.03
  config.widths = (2, 8, 64)
  config.linear_depth = 2  # hidden layers of the deep linear net: 3 dense layers W1, W2, W3
  config.linear_width = 32
  config.steps = 3000
  config.learning_rate = 0.03
  config.grid = 160  # decision regions on grid x grid points
  config.seed = 0
  return common.sized(
    size, config, test={"steps": 1500, "grid": 100}, full={"steps": 10000, "grid": 300}
  )


# --------------------------------------------------------------------------------------- data


def spirals(points_per_class: int, turns: float, noise: float, seed: int):
  """Two interleaved spirals r = t, angle 2 pi turns t (+ pi for class 1), t in [0.1, 1].

  Returns x: (2n, 2) float32, y: (2n,) int32 in {0, 1}.
  """
  rng = np.random.default_rng(seed)
  t = np.linspace(0.1, 1.0, points_per_class)
  xs, ys = [], []
  for label in (0, 1):
    angle = 2 * np.pi * turns * t + np.pi * label
    arm = np.stack([t * np.cos(angle), t * np.sin(angle)], -1)
    xs.append(arm + noise * rng.normal(size=arm.shape))
    ys.append(np.full(points_per_class, label))
  return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int32)


# ----------------------------------------------------------------------- the best line, exactly


def best_linear_accuracy(x: np.ndarray, y: np.ndarray, chunk: int = 2048) -> float:
  """The highest training accuracy of any linear classifier sign(u . x - t) on 2-D points.

  The labelling a line induces changes only where its normal u passes a direction perpendicular
  to some x_i - x_j, so the normals just beside those directions (+- 1e-7 rad) reach every
  labelling a line can make; for each normal every threshold t between sorted projections (and
  both orientations) is tried. Exact for points in general position.
  """
  x = np.asarray(x, np.float64)
  y = np.asarray(y)
  i, j = np.triu_indices(len(x), 1)
  diff = x[j] - x[i]
  critical = np.arctan2(diff[:, 1], diff[:, 0]) + np.pi / 2
  angles = np.concatenate([critical - 1e-7, critical + 1e-7])
  best = 0.0
  n, positives = len(y), int(y.sum())
  for start in range(0, len(angles), chunk):
    a = angles[start : start + chunk]
    proj = np.cos(a)[:, None] * x[None, :, 0] + np.sin(a)[:, None] * x[None, :, 1]
    labels = y[np.argsort(proj, axis=1)]
    # threshold after the k smallest projections: class 0 below, class 1 above
    below_zeros = np.concatenate([np.zeros((len(a), 1)), np.cumsum(1 - labels, 1)], 1)
    above_ones = positives - np.concatenate([np.zeros((len(a), 1)), np.cumsum(labels, 1)], 1)
    correct = below_zeros + above_ones
    best = max(best, float(np.max(np.maximum(correct, n - correct))) / n)
  return best


# --------------------------------------------------------------------------------- training


@functools.partial(jax.jit, static_argnames=("model", "steps", "learning_rate"))
def _fit(model, key, x, y, points, steps: int, learning_rate: float):
  """Initializes `model`, runs full-batch Adam on the mean softmax cross-entropy for `steps`
  steps and predicts the classes of x and of `points`: one compiled program per model.

  Returns (initial params, their logits of points, params, final loss, logits of x, predicted
  classes of points).
  """
  tx = optim.adam(learning_rate)
  initial = params = model.init(key, x)["params"]

  def loss_fn(p):
    return softmax_cross_entropy(model.apply({"params": p}, x), y)

  def step(carry, _):
    p, state = carry
    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, state = tx.update(grads, state, p)
    return (jax.tree.map(jnp.add, p, updates), state), loss

  (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)

  def logits(inputs):
    return model.apply({"params": params}, inputs)

  initial_logits = model.apply({"params": initial}, points)
  return initial, initial_logits, params, losses[-1], logits(x), jnp.argmax(logits(points), -1)


def train(model, x, y, points, config) -> dict:
  """Trains `model` on (x, y) from the seed `config.seed`.

  Returns {"initial_params", "initial_logits" (of `points`), "params", "loss" (final),
  "logits" (of x), "accuracy" (training), "classes" (of `points`)}.
  """
  initial, initial_logits, params, loss, logits, classes = _fit(
    model,
    jax.random.key(config.seed),
    jnp.asarray(x),
    jnp.asarray(y),
    jnp.asarray(points, jnp.float32),
    config.steps,
    config.learning_rate,
  )
  return {
    "initial_params": initial,
    "initial_logits": np.asarray(initial_logits),
    "params": params,
    "loss": float(loss),
    "logits": np.asarray(logits),
    "accuracy": float(np.mean(np.argmax(np.asarray(logits), -1) == np.asarray(y))),
    "classes": np.asarray(classes),
  }


# ------------------------------------------------------------------------ the affine collapse


def dense_layers(params) -> list[tuple[np.ndarray, np.ndarray]]:
  """(W, b) of each layer of an MLP in order, W as (out, in) so that a layer is W x + b."""
  names = sorted((k for k in params if k.startswith("dense_")), key=lambda k: int(k[6:]))
  return [
    (np.asarray(params[k]["kernel"], np.float64).T, np.asarray(params[k]["bias"], np.float64))
    for k in [*names, "head"]
  ]


def collapse(layers: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
  """W' and b' of the composition of affine layers: W' = W_L ... W_1, b' = W_L(... b_1 ...) + b_L.

  For three layers this is the notes' W' = W3 W2 W1, b' = W3 (W2 b1 + b2) + b3.
  """
  w, b = layers[0]
  for wk, bk in layers[1:]:
    w, b = wk @ w, wk @ b + bk
  return w, b


def collapse_gap(params, x: np.ndarray, outputs) -> float:
  """max |f(x) - (W'x + b')|: the network's outputs against its collapsed affine map."""
  w, b = collapse(dense_layers(params))
  affine = np.asarray(x, np.float64) @ w.T + b
  return float(np.max(np.abs(np.asarray(outputs, np.float64) - affine)))


# ------------------------------------------------------------------ decision-boundary measures


def grid_points(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """An n x n grid over the data's box (padded by 10%): (xs, ys, points (n*n, 2) float32)."""
  lo, hi = x.min(0), x.max(0)
  pad = 0.1 * (hi - lo)
  xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n)
  ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
  gx, gy = np.meshgrid(xs, ys)
  return xs, ys, np.stack([gx.ravel(), gy.ravel()], -1).astype(np.float32)


def boundary_measures(labels: np.ndarray, patterns: np.ndarray, spacing: tuple) -> dict:
  """Length and linear pieces of a decision boundary drawn on a grid.

  labels: (n, n) predicted classes; patterns: (n, n) integer ids of the hidden ReLU on/off
  pattern at each grid point; spacing: (dx, dy). A crossing is a pair of neighbouring grid
  points with different labels; the length counts dy for each horizontal crossing and dx for
  each vertical one; the pieces are the distinct patterns shared by both points of a crossing
  (inside one pattern the network is affine, so its boundary there is one straight segment).
  """
  h = labels[:, 1:] != labels[:, :-1]
  v = labels[1:, :] != labels[:-1, :]
  length = h.sum() * spacing[1] + v.sum() * spacing[0]
  same_h = h & (patterns[:, 1:] == patterns[:, :-1])
  same_v = v & (patterns[1:, :] == patterns[:-1, :])
  pieces = set(patterns[:, 1:][same_h].tolist()) | set(patterns[1:, :][same_v].tolist())
  return {"length": float(length), "pieces": len(pieces), "crossings": int(h.sum() + v.sum())}


def relu_patterns(params, points: np.ndarray) -> np.ndarray:
  """An integer id of the on/off pattern of the first hidden layer's ReLUs at each point."""
  w, b = dense_layers(params)[0]
  on = (points.astype(np.float64) @ w.T + b) > 0
  _, ids = np.unique(on, axis=0, return_inverse=True)
  return ids.reshape(-1)


# -------------------------------------------------------------------------------------- run


def run(config: ml_collections.ConfigDict) -> FigureResult:
  checks = []
  # (a) XOR: the best line, logistic regression, a 2-layer ReLU MLP
  xor_best = best_linear_accuracy(XOR_X, XOR_Y)
  xor_axis = np.linspace(-0.5, 1.5, 81)
  gx, gy = np.meshgrid(xor_axis, xor_axis)
  xor_grid = np.stack([gx.ravel(), gy.ravel()], -1)
  xor_x, xor_y = XOR_X.astype(np.float32), XOR_Y.astype(np.int32)
  logistic = train(create("linear", num_classes=2), xor_x, xor_y, xor_grid, config)
  xor_mlp = create("mlp", num_classes=2, depth=1, width=8, activation="relu")
  mlp = train(xor_mlp, xor_x, xor_y, xor_grid, config)
  checks += [
    check(
      "XOR: the best accuracy of any line (exact sweep)", xor_best, "<= 0.75", xor_best <= 0.75
    ),
    check(
      "XOR: logistic regression trained with research.optim.adam, training accuracy",
      logistic["accuracy"],
      "<= 0.75",
      logistic["accuracy"] <= 0.75,
    ),
    check(
      "XOR: 2-layer ReLU MLP (8 hidden units) training accuracy",
      mlp["accuracy"],
      1.0,
      mlp["accuracy"] == 1.0,
    ),
  ]

  # (b) without activations the layers collapse to one affine map
  x, y = spirals(config.points_per_class, config.turns, config.noise, config.seed)
  spiral_best = best_linear_accuracy(x, y)
  xs, ys, points = grid_points(x, config.grid)
  deep_linear = create(
    "mlp",
    num_classes=2,
    depth=config.linear_depth,
    width=config.linear_width,
    activation="identity",
    bias_init=initializers.get("normal", stddev=1.0),  # random biases, so that b' matters
  )
  linear = train(deep_linear, x, y, points, config)
  layers = config.linear_depth + 1
  random_gap = collapse_gap(linear["initial_params"], points, linear["initial_logits"])
  trained_gap = collapse_gap(linear["params"], x, linear["logits"])
  checks += [
    check_less(
      f"{layers} random dense layers (He kernels, N(0, 1) biases), identity activation: "
      f"max abs(f(x) - (W'x + b')) over the {len(points)} grid points",
      random_gap,
      COLLAPSE_TOLERANCE,
    ),
    check(
      f"spirals: [{layers}-layer linear net, best line] training accuracy",
      [linear["accuracy"], spiral_best],
      "first <= second",
      linear["accuracy"] <= spiral_best,
    ),
    check_less(
      "the trained linear net is W'x + b' too: max abs(f(x) - (W'x + b')) on the spirals",
      trained_gap,
      COLLAPSE_TOLERANCE,
    ),
  ]

  # (c) more hidden units, more complex decision boundaries
  shape = (config.grid, config.grid)
  spacing = (xs[1] - xs[0], ys[1] - ys[0])
  widths = {}
  for width in config.widths:
    fit = train(
      create("mlp", num_classes=2, depth=1, width=width, activation="relu"), x, y, points, config
    )
    labels = fit["classes"].reshape(shape)
    patterns = relu_patterns(fit["params"], points).reshape(shape)
    widths[width] = {
      "train_accuracy": fit["accuracy"],
      "train_loss": fit["loss"],
      **boundary_measures(labels, patterns, spacing),
      "regions": labels,
    }
  order = list(config.widths)
  pieces = [widths[w]["pieces"] for w in order]
  lengths = [widths[w]["length"] for w in order]
  accs = [widths[w]["train_accuracy"] for w in order]
  checks += [
    check(
      f"hidden units {order}: linear pieces of the decision boundary",
      pieces,
      "strictly increasing",
      all(a < b for a, b in zip(pieces, pieces[1:], strict=False)),
    ),
    check(
      f"hidden units {order}: length of the decision boundary on the grid",
      lengths,
      "strictly increasing",
      all(a < b for a, b in zip(lengths, lengths[1:], strict=False)),
    ),
    check(
      f"hidden units {order}: training accuracy (does not fall; the widest beats the best line)",
      accs,
      f"non-decreasing, last > {spiral_best:.3f}",
      all(a <= b for a, b in zip(accs, accs[1:], strict=False)) and accs[-1] > spiral_best,
    ),
  ]
  data = {
    "xor": {
      "best_line_accuracy": xor_best,
      "logistic_accuracy": logistic["accuracy"],
      "logistic_loss": logistic["loss"],
      "mlp_accuracy": mlp["accuracy"],
      "mlp_loss": mlp["loss"],
      "grid": xor_axis,
      "mlp_regions": mlp["classes"].reshape(gx.shape),
    },
    "collapse": {"random_gap": random_gap, "trained_gap": trained_gap},
    "spirals": {
      "x": x,
      "y": y,
      "grid_x": xs,
      "grid_y": ys,
      "best_line_accuracy": spiral_best,
      "deep_linear_layers": config.linear_depth,
      "deep_linear_accuracy": linear["accuracy"],
      "deep_linear_loss": linear["loss"],
      "deep_linear_regions": linear["classes"].reshape(shape),
    },
    "widths": {str(w): v for w, v in widths.items()},
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


# ------------------------------------------------------------------------------------ plotting


def _regions(ax, xs, ys, regions, x, y, title: str, size: float = 10) -> None:
  ax.contourf(xs, ys, np.asarray(regions), levels=[-0.5, 0.5, 1.5], colors=["#cfe0f5", "#f7d3c4"])
  ax.contour(xs, ys, np.asarray(regions), levels=[0.5], colors="k", linewidths=0.8)
  x, y = np.asarray(x), np.asarray(y)
  for label, color in ((0, "C0"), (1, "C3")):
    ax.scatter(*x[y == label].T, s=size, c=color, edgecolors="none")
  ax.set_title(title, fontsize=10)
  ax.set_aspect("equal")
  ax.set_xticks([])
  ax.set_yticks([])


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  xor, sp = d["xor"], d["spirals"]
  fig, axes = common.subplots(2, 3, figsize=(15, 9.5), title=TITLE)
  _regions(
    axes[0, 0],
    xor["grid"],
    xor["grid"],
    xor["mlp_regions"],
    XOR_X,
    XOR_Y,
    f"XOR: 2-layer ReLU MLP {xor['mlp_accuracy']:.0%}; best line {xor['best_line_accuracy']:.0%}",
    size=80,
  )
  axes[0, 0].plot([-0.5, 1.5], [1.0, -1.0], "k--", lw=1)  # x + y = 0.5: 3 of 4 right
  axes[0, 0].set_xlim(-0.5, 1.5)
  axes[0, 0].set_ylim(-0.5, 1.5)
  axes[0, 0].text(-0.45, 1.4, "dashed: a best line (3 of 4)", fontsize=8)
  _regions(
    axes[0, 1],
    sp["grid_x"],
    sp["grid_y"],
    sp["deep_linear_regions"],
    sp["x"],
    sp["y"],
    f"{sp['deep_linear_layers'] + 1} dense layers, no activation: "
    f"{sp['deep_linear_accuracy']:.1%}; best line {sp['best_line_accuracy']:.1%}\n"
    f"one affine map: max |f - (W'x+b')| = {d['collapse']['trained_gap']:.1e}",
  )
  ax = axes[0, 2]
  names = ["best line\n(exact)", "3 linear\nlayers"]
  values = [sp["best_line_accuracy"], sp["deep_linear_accuracy"]]
  for w, info in d["widths"].items():
    names.append(f"ReLU MLP\n{w} units")
    values.append(info["train_accuracy"])
  ax.bar(range(len(values)), values, color=["0.5"] * 2 + [f"C{i}" for i in range(len(d["widths"]))])
  for i, v in enumerate(values):
    ax.text(i, v + 0.01, f"{v:.2f}", ha="center", fontsize=8)
  ax.set_xticks(range(len(values)), names, fontsize=8)
  ax.set_ylim(0, 1.1)
  ax.set_ylabel("training accuracy on the spirals")
  ax.set_title("Linear models stay at the best line's accuracy", fontsize=10)
  for ax, (w, info) in zip(axes[1], d["widths"].items(), strict=True):
    _regions(
      ax,
      sp["grid_x"],
      sp["grid_y"],
      info["regions"],
      sp["x"],
      sp["y"],
      f"{w} hidden ReLU units: accuracy {info['train_accuracy']:.1%}\n"
      f"boundary: linear pieces {info['pieces']}, length {info['length']:.1f}",
    )
  return [common.save_figure(fig, out_dir, NAME, rect=(0, 0, 1, 0.97))]
