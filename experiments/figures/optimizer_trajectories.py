"""The lecture's optimizer animation (after Alec Radford): SGD, momentum, NAG, AdaGrad, RMSProp,
AdaDelta and Adam on Beale's function, a long narrow valley and a saddle point.

  * Beale: f = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2, minimum (3, 0.5).
  * valley: f = 5 y^2 + 0.05 (x - 4)^2: curvatures 10 and 0.1 (kappa = 100), minimum (4, 0).
  * saddle: f = x^2/2 + y^4/4 - y^2/2, started at (-1, 1e-3), a hair off the ridge y = 0 that
    leads into the saddle at 0; the minima are (0, +-1).
Each rule has its own learning rate per surface (as in the animation). Writes NAME.png and
NAME.gif.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from matplotlib import animation
from matplotlib.transforms import Bbox

from experiments.figures import _optim_utils as U
from experiments.figures import common, problems
from experiments.figures.common import FigureResult, check, check_greater, check_less
from research import optim

NAME = "optimizer_trajectories"
TITLE = "Optimizer trajectories on Beale's function, a long valley and a saddle (animated)"
CAPTION = (
  "SGD, heavy-ball momentum, NAG, AdaGrad, RMSProp, AdaDelta and Adam (our `research.optim` "
  "rules) on Beale's function (minimum (3, 0.5)), on a long valley with kappa = 100 and at "
  "a saddle point, as in the lecture's animation; the GIF replays them. Checks: each method's "
  "final distance to Beale's minimum; at the saddle, plain GD started a hair off the ridge "
  "stays near the saddle while momentum and the adaptive methods leave it."
)

METHODS = ("SGD", "Momentum", "NAG", "AdaGrad", "RMSProp", "AdaDelta", "Adam")
COLORS = ("tab:red", "tab:blue", "tab:cyan", "tab:green", "tab:purple", "tab:olive", "k")


def _rule(method: str, lr: float):
  return {
    "SGD": lambda: optim.sgd(lr),
    "Momentum": lambda: optim.heavy_ball(lr, 0.9),
    "NAG": lambda: optim.nesterov(lr, 0.9),
    "AdaGrad": lambda: optim.adagrad(lr, initial_accumulator_value=0.0, eps=1e-8),
    "RMSProp": lambda: optim.rmsprop(lr, 0.9),
    "AdaDelta": lambda: optim.adadelta(lr, 0.95),
    "Adam": lambda: optim.adam(lr),
  }[method]()


def long_valley(p):
  """f = 5 y^2 + 0.05 (x - 4)^2, minimum 0 at (4, 0)."""
  return 5.0 * p[1] ** 2 + 0.05 * (p[0] - 4.0) ** 2


SURFACES = {  # name: (function, start, minimum or None, xlim, ylim)
  "beale": (problems.beale, (1.0, 1.5), (3.0, 0.5), (-0.5, 4.0), (-1.0, 2.0)),
  "valley": (long_valley, (-4.0, 1.0), (4.0, 0.0), (-4.5, 4.5), (-1.5, 1.5)),
  "saddle": (problems.double_well, (-1.0, 1e-3), None, (-1.5, 1.5), (-1.5, 1.5)),
}


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.steps = {"beale": 500, "valley": 500, "saddle": 300}
  # learning rate of each method (in METHODS order) on each surface
  c.learning_rates = {
    "beale": (0.02, 0.003, 0.003, 1.0, 0.01, 10.0, 0.05),
    "valley": (0.09, 0.02, 0.02, 0.5, 0.05, 10.0, 0.1),
    "saddle": (0.01, 0.01, 0.01, 0.1, 0.01, 1.0, 0.01),
  }
  c.beale_tolerance = 0.2  # every method must end this close to (3, 0.5)
  c.frames = 40
  return common.sized(size, c, full={"frames": 80})


def run(config) -> FigureResult:
  paths = {}
  with jax.enable_x64(True):
    for surface, (fun, start, _, _, _) in SURFACES.items():
      x0 = jnp.asarray(start, jnp.float64)
      steps = config.steps[surface]
      lrs = config.learning_rates[surface]
      run_all = jax.jit(
        lambda fun=fun, x0=x0, steps=steps, lrs=lrs: [
          U.optimize(_rule(m, lr), fun, x0, steps).xs for m, lr in zip(METHODS, lrs, strict=True)
        ]
      )
      paths[surface] = np.stack([np.asarray(p) for p in run_all()])  # (methods, K+1, 2)
  beale_dist = np.linalg.norm(paths["beale"][:, -1] - np.array(SURFACES["beale"][2]), axis=1)
  valley_dist = np.linalg.norm(paths["valley"][:, -1] - np.array(SURFACES["valley"][2]), axis=1)
  saddle_dist = np.linalg.norm(paths["saddle"][:, -1], axis=1)
  others = saddle_dist[1:]
  checks = [
    check_less(
      "Beale: largest final distance to (3, 0.5) over the 7 methods",
      float(beale_dist.max()),
      config.beale_tolerance,
    ),
    check(
      "Beale: final distance to (3, 0.5) per method " + "/".join(METHODS),
      [round(float(d), 4) for d in beale_dist],
      f"each < {config.beale_tolerance}",
      bool(np.all(beale_dist < config.beale_tolerance)),
    ),
    check_less(
      "saddle: plain GD's final distance from the saddle (0, 0)", float(saddle_dist[0]), 0.1
    ),
    check_greater(
      "saddle: smallest final distance from (0, 0) of momentum, NAG and the adaptive methods",
      float(others.min()),
      0.9,
    ),
    check_less(
      "valley: momentum's final distance to (4, 0) vs SGD's (ratio)",
      float(valley_dist[1] / valley_dist[0]),
      0.1,
    ),
  ]
  data = {
    "methods": list(METHODS),
    "beale_distance": beale_dist,
    "valley_distance": valley_dist,
    "saddle_distance": saddle_dist,
    "learning_rates": {k: list(v) for k, v in config.learning_rates.items()},
    "paths": paths,
    "frames": config.frames,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def _axes(fig_axes, data):
  lines = []
  for ax, (surface, (fun, _, minimum, xlim, ylim)) in zip(fig_axes, SURFACES.items(), strict=True):
    U.contour(ax, fun, xlim, ylim, levels=30, minimum=minimum)
    if minimum is None:
      ax.plot([0], [0], marker="x", color="k", markersize=10, linestyle="none")
    ax.set_title(
      {
        "beale": "Beale's function",
        "valley": "long valley ($\\kappa$ = 100)",
        "saddle": "saddle point",
      }[surface]
    )
    lines.append(
      [ax.plot([], [], lw=1.5, color=c, label=m)[0] for m, c in zip(METHODS, COLORS, strict=True)]
    )
  fig_axes[0].legend(loc="lower right", fontsize=7)
  return lines


def _background(paths: dict, dpi: int):
  """Renders the contours (no paths) at `dpi`; returns (RGBA array, path pixels, axes boxes)."""
  fig, axes = common.subplots(1, 3, panel=(4.6, 4.0))
  _axes(axes, None)
  fig.set_dpi(dpi)
  fig.tight_layout()
  fig.canvas.draw()
  background = np.asarray(fig.canvas.buffer_rgba()).copy()  # (H, W, 4)
  pixels = {
    s: [ax.transData.transform(p) for p in paths[s]]  # display coordinates
    for ax, s in zip(axes, SURFACES, strict=True)
  }
  boxes = [Bbox(ax.bbox.get_points()) for ax in axes]
  return background, pixels, boxes


def plot(result: FigureResult, out_dir) -> list:
  """NAME.png: the full paths. NAME.gif: the paths growing, drawn over a pre-rendered
  background (the contours are rendered once; each frame only draws the lines)."""
  d = result.data
  paths = {k: np.asarray(v) for k, v in d["paths"].items()}
  fig, axes = common.subplots(1, 3, panel=(4.6, 4.0))
  lines = _axes(axes, d)
  for surface_lines, surface in zip(lines, SURFACES, strict=True):
    for line, path in zip(surface_lines, paths[surface], strict=True):
      line.set_data(path[:, 0], path[:, 1])
  png = common.save_figure(fig, out_dir, NAME)

  dpi = 60
  background, pixels, boxes = _background(paths, dpi)
  height, width = background.shape[:2]
  fig = common.figure((width / dpi, height / dpi))
  ax = fig.add_axes((0, 0, 1, 1))
  ax.imshow(background, extent=(0, width, 0, height), interpolation="nearest")
  ax.set_xlim(0, width)
  ax.set_ylim(0, height)
  ax.axis("off")
  anim_lines = []
  for surface, box in zip(SURFACES, boxes, strict=True):
    for j, color in enumerate(COLORS):
      line = ax.plot([], [], lw=1.5, color=color)[0]
      line.set_clip_box(box)
      anim_lines.append((pixels[surface][j], line))
  frames = int(d["frames"])

  def draw(i):
    for pts, line in anim_lines:
      k = max(2, int((i + 1) / frames * len(pts)))
      line.set_data(pts[:k, 0], pts[:k, 1])
    return [line for _, line in anim_lines]

  gif = pathlib.Path(out_dir) / f"{NAME}.gif"
  anim = animation.FuncAnimation(fig, draw, frames=frames, blit=False)
  anim.save(gif, writer=animation.PillowWriter(fps=12), dpi=dpi)
  return [png, gif]
