"""The slides' initialization experiment: activation statistics of 10 tanh / ReLU layers of 500.

Slides 128-135 of 004: a network of 10 hidden layers of 500 units fed with 1000 unit-Gaussian
samples. With tanh,

  * W ~ N(0, 0.01^2): every layer multiplies the signal's scale by about sqrt(500) * 0.01 = 0.22,
    so beyond the first layers all activations are 0 (the signal vanishes);
  * W ~ N(0, 1): pre-activations have std about sqrt(500) = 22, so almost every unit saturates
    at -1 or +1 (local gradients are 0);
  * Xavier, W ~ N(0, 1/N): Var(sum_i w_i z_i) = N Var(w) Var(z) = Var(z), the scale holds.

With ReLU, Xavier halves the variance at every layer (ReLU zeroes half the inputs) so the std
decays by about 1/sqrt(2) per layer; He, W ~ N(0, 2/N), restores it.

The network is `research.models.create('mlp', depth=10, width=500, ...)` with the named
initializers; the activations are read with Flax's `capture_intermediates`. For 500 x 500 layers
`xavier_normal` (Var = 2 / (fan_in + fan_out)) equals the slides' N(0, 1/N). Per-layer mean and
std come from `research.models.diagnostics.activation_stats`.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.figures import common
from experiments.figures.common import FigureResult, check, check_greater, check_less
from research.models import create, diagnostics

NAME = "init_statistics"
TITLE = "Activation statistics of 10 layers x 500 units under five initializations (slides)"
CAPTION = (
  "Per-layer histograms of the activations of a 10-layer, 500-unit MLP fed 1000 unit-Gaussian "
  "inputs, as in the slides. tanh with N(0, 0.01^2): the signal vanishes after a few layers; "
  "tanh with N(0, 1): nearly every unit saturates at +-1; tanh with Xavier N(0, 1/N): the "
  "spread holds; ReLU with Xavier: the std shrinks by about 1/sqrt(2) per layer; ReLU with He "
  "N(0, 2/N): it holds."
)

# key -> (activation, research.models initializer name)
CASES = {
  "tanh_normal_0.01": ("tanh", "normal_0.01"),
  "tanh_normal_1": ("tanh", "normal_1"),
  "tanh_xavier": ("tanh", "xavier_normal"),
  "relu_xavier": ("relu", "xavier_normal"),
  "relu_he": ("relu", "he_normal"),
}
SATURATION = 0.9  # |tanh| above this counts as saturated


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.depth = 10
  config.width = 500
  config.num_samples = 1000
  config.bins = 40
  config.seed = 0
  return common.sized(size, config)  # the slides' size is already small: one size for all


def layer_activations(
  activation: str, kernel_init: str, x: jax.Array, depth: int, width: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Every hidden activation of the MLP at initialization, and its per-layer mean and std.

  Returns:
    (activations (depth, N, width), means (depth,), stds (depth,)); the statistics come from
    `research.models.diagnostics.activation_stats`.
  """
  model = create(
    "mlp",
    num_classes=10,
    depth=depth,
    width=width,
    activation=activation,
    kernel_init=kernel_init,
    bias_init="zeros",
  )
  variables = model.init(jax.random.PRNGKey(seed), x, train=False)
  stats = diagnostics.activation_stats(model, variables, x)
  if [s.name for s in stats] != [f"act_{i}" for i in range(depth)]:
    raise ValueError(
      f"expected the activations act_0..act_{depth - 1}, got {[s.name for s in stats]}"
    )
  _, state = model.apply(
    variables,
    x,
    train=False,
    capture_intermediates=lambda mdl, _: (mdl.name or "").startswith("act_"),
    mutable=["intermediates"],
  )
  acts = state["intermediates"]
  return (
    np.stack([np.asarray(acts[f"act_{i}"]["__call__"][0]) for i in range(depth)]),
    np.asarray([s.mean for s in stats]),
    np.asarray([s.std for s in stats]),
  )


def run(config: ml_collections.ConfigDict) -> FigureResult:
  x = jax.random.normal(
    jax.random.PRNGKey(config.seed + 1), (config.num_samples, 1, 1, config.width), jnp.float32
  )
  data = {"means": {}, "histograms": {}, "saturated_fraction": {}}
  for key, (activation, init) in CASES.items():
    a, means, stds = layer_activations(activation, init, x, config.depth, config.width, config.seed)
    flat = a.reshape(config.depth, -1)
    data[key] = stds.tolist()
    data["means"][key] = means.tolist()
    data["saturated_fraction"][key] = (np.abs(flat) > SATURATION).mean(1).tolist()
    lo, hi = (-1.0, 1.0) if activation == "tanh" else (0.0, max(float(flat.max()), 1e-6))
    if key == "tanh_normal_0.01":
      hi = max(float(np.abs(flat).max()), 1e-12)
      lo = -hi
    edges = np.linspace(lo, hi, config.bins + 1)
    data["histograms"][key] = {
      "edges": edges.tolist(),
      "counts": [np.histogram(f, edges)[0].tolist() for f in flat],
    }

  std = {k: np.asarray(data[k]) for k in CASES}
  sat = {k: np.asarray(v) for k, v in data["saturated_fraction"].items()}
  small = std["tanh_normal_0.01"]
  ratios_small = small[1:] / small[:-1]
  ratios_xr = std["relu_xavier"][1:] / std["relu_xavier"][:-1]
  checks = [
    check_less("tanh N(0,0.01^2): std of layer 10 (vanishes)", float(small[-1]), 1e-4),
    check_less(
      "tanh N(0,0.01^2): largest layer-to-layer std ratio (~0.22 = sqrt(500)*0.01)",
      float(ratios_small.max()),
      0.3,
    ),
    check_greater(
      "tanh N(0,1): smallest per-layer fraction of abs(a) > 0.9 (saturated)",
      float(sat["tanh_normal_1"].min()),
      0.8,
    ),
    check_greater(
      "tanh Xavier: std of layer 10 / std of layer 1 (holds)",
      float(std["tanh_xavier"][-1] / std["tanh_xavier"][0]),
      0.25,
    ),
    check_less(
      "tanh Xavier: largest per-layer saturated fraction (no saturation)",
      float(sat["tanh_xavier"].max()),
      0.2,
    ),
    check(
      "ReLU Xavier: every layer-to-layer std ratio in (0.6, 0.8) (~1/sqrt(2))",
      [float(ratios_xr.min()), float(ratios_xr.max())],
      "(0.6, 0.8)",
      ratios_xr.min() > 0.6 and ratios_xr.max() < 0.8,
    ),
    check_less(
      "ReLU Xavier: std of layer 10 / std of layer 1 (decays, ~0.707^9 = 0.044)",
      float(std["relu_xavier"][-1] / std["relu_xavier"][0]),
      0.1,
    ),
    check(
      "ReLU He: std of layer 10 / std of layer 1 (holds)",
      float(std["relu_he"][-1] / std["relu_he"][0]),
      "in (0.5, 2)",
      0.5 < std["relu_he"][-1] / std["relu_he"][0] < 2.0,
    ),
  ]
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  depth = len(d["relu_he"])
  fig = common.figure(
    (20, 12),
    title=TITLE + "\n(rows: tanh N(0,0.01^2), tanh N(0,1), tanh "
    "Xavier, ReLU Xavier, ReLU He; left: per-layer mean and std)",
  )
  grid = fig.add_gridspec(
    len(CASES), depth + 2, width_ratios=[2.4, 0.25] + [1] * depth, hspace=0.55, wspace=0.25
  )
  for row, key in enumerate(CASES):
    layers = np.arange(1, depth + 1)
    ax = fig.add_subplot(grid[row, 0])
    if key in ("tanh_normal_0.01", "relu_xavier"):
      ax.semilogy(layers, np.abs(d["means"][key]), "o-", ms=3, label="abs(mean)")
      ax.semilogy(layers, d[key], "s-", ms=3, label="std")
    else:
      ax.plot(layers, d["means"][key], "o-", ms=3, label="mean")
      ax.plot(layers, d[key], "s-", ms=3, label="std")
    ax.set_xticks(layers)
    ax.set_xlabel("hidden layer")
    ax.set_ylabel(key, fontsize=10, fontweight="bold")
    ax.legend(fontsize=7)
    hist = d["histograms"][key]
    edges = np.asarray(hist["edges"])
    centers = (edges[1:] + edges[:-1]) / 2
    for layer in range(depth):
      hax = fig.add_subplot(grid[row, layer + 2])
      counts = np.asarray(hist["counts"][layer])
      hax.bar(centers, counts, width=edges[1] - edges[0], color="C0")
      hax.set_title(f"layer {layer + 1}\nstd {d[key][layer]:.2g}", fontsize=7)
      hax.tick_params(labelsize=5)
      hax.set_yticks([])
      if layer == 0:
        hax.set_ylabel("count", fontsize=7)
      hax.set_xlabel("activation", fontsize=6)
  return [common.save_figure(fig, out_dir, NAME, tight=False, bbox_inches="tight")]
