"""What every figure module shares: the figure contract, sizes, the result record, checks and
the plotting helpers.

A figure module `experiments/figures/<NAME>.py` defines

    NAME: str                    # the file stem, e.g. "lr_regimes"
    TITLE: str                   # one line
    CAPTION: str                 # what the figure shows and what the lecture claims
    get_config(size: str = "default") -> ml_collections.ConfigDict   # size in SIZES
    run(config) -> FigureResult  # the computation and its checks; no drawing
    plot(result, out_dir) -> list[pathlib.Path]   # writes out_dir/NAME.png (and NAME.gif)

so that tests run `run(get_config("test"))` without drawing anything. `get_config` builds the
default settings and returns `sized(size, config, test=..., full=...)`: "test" is the reduced
run the tests use (still large enough for every check to mean what it says), "default" the
CPU-size run of `python -m experiments.figures`, "full" the paper-size run (`--full`, meant
for accelerators).

Where shared code lives (a figure never imports another figure):

* `common` (this module): the contract, `sized`, `Check` / `FigureResult` and the `check*`
  builders, and the plotting helpers `subplots` / `figure` / `save_figure` (the house style:
  Agg canvases, `DPI`, tight layout) that every `plot` uses;
* `problems`: the test problems, losses and small networks used by more than one figure;
* `_optim_utils`: part 1's scanned optimizer loop (`optimize`), rate fits and contour plots;
* `_fit`: part 2's training through `research.train`'s engine (`fit`) and `load_data`.

Imports stand at the top of every module (`research`, JAX, matplotlib alike); every dataset
comes through `research.data`. None of them starts a JAX backend, so `python -m experiments.figures`
still applies `research.runtime`'s settings before the first computation.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Any

import ml_collections
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SIZES = ("test", "default", "full")


def sized(
  size: str,
  default: ml_collections.ConfigDict | dict,
  *,
  test: dict | None = None,
  full: dict | None = None,
) -> ml_collections.ConfigDict:
  """The config of one size: `default`, with `test` or `full` merged over it for those sizes.

  The merge is `ConfigDict.update` (nested dicts are merged field by field). Every top-level
  key of `test` and `full` must be a field of `default`.

  Raises:
    ValueError: `size` is not one of SIZES, or an override names a field `default` lacks.
  """
  if size not in SIZES:
    raise ValueError(f"unknown size {size!r}; choose from {', '.join(map(repr, SIZES))}")
  config = ml_collections.ConfigDict(default)
  overrides = {"test": test, "full": full}.get(size) or {}
  unknown = sorted(set(overrides) - set(config.keys()))
  if unknown:
    raise ValueError(
      f"size {size!r} overrides {unknown}, which are not fields of the default "
      f"config ({', '.join(sorted(config.keys()))})"
    )
  config.update(overrides)
  return config


def to_builtin(x: Any) -> Any:
  """Converts NumPy / JAX scalars and arrays (nested in lists and dicts) to JSON types."""
  if isinstance(x, dict):
    return {str(k): to_builtin(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [to_builtin(v) for v in x]
  if hasattr(x, "shape") and hasattr(x, "dtype"):
    x = np.asarray(x)
    return to_builtin(x.tolist()) if x.ndim else to_builtin(x.item())
  if isinstance(x, (np.bool_, bool)):
    return bool(x)
  if isinstance(x, (np.integer, int)):
    return int(x)
  if isinstance(x, (np.floating, float)):
    x = float(x)
    return x if math.isfinite(x) else str(x)  # JSON has no inf / nan
  return x


@dataclasses.dataclass
class Check:
  """One numeric claim of a figure: what was measured against what theory expects."""

  what: str
  measured: Any
  expected: Any
  passed: bool

  def as_dict(self) -> dict:
    return {
      "what": self.what,
      "measured": to_builtin(self.measured),
      "expected": to_builtin(self.expected),
      "passed": bool(self.passed),
    }


@dataclasses.dataclass(frozen=True)
class Paper:
  """The published claim a figure reproduces, shown beside our numbers in REPORT.md.

  source: the paper (or the lecture note and line) and where in it; setup: what the paper
  trained; number: the claim and its numbers as the paper states them.
  """

  source: str
  setup: str
  number: str


@dataclasses.dataclass
class FigureResult:
  """A figure's computation: its key numbers (`data`), its checks and the claim it reproduces."""

  name: str
  title: str
  caption: str
  checks: list[Check]
  data: dict
  paper: Paper | None = None

  @property
  def passed(self) -> bool:
    return bool(self.checks) and all(c.passed for c in self.checks)

  def as_dict(self) -> dict:
    return {
      "name": self.name,
      "title": self.title,
      "caption": self.caption,
      "passed": self.passed,
      "checks": [c.as_dict() for c in self.checks],
      "data": to_builtin(self.data),
      "paper": None if self.paper is None else dataclasses.asdict(self.paper),
    }


def check(what: str, measured: Any, expected: Any, passed: Any) -> Check:
  """Builds a `Check`; `passed` is computed by the caller from `measured`."""
  return Check(what=what, measured=measured, expected=expected, passed=bool(passed))


def check_less(what: str, measured: float, bound: float) -> Check:
  """Check that `measured < bound`."""
  return check(what, measured, f"< {bound:.6g}", measured < bound)


def check_greater(what: str, measured: float, bound: float) -> Check:
  """Check that `measured > bound`."""
  return check(what, measured, f"> {bound:.6g}", measured > bound)


def check_close(
  what: str, measured: float, expected: float, rtol: float = 0.1, atol: float = 0.0
) -> Check:
  """Check that `|measured - expected| <= atol + rtol |expected|`."""
  ok = abs(measured - expected) <= atol + rtol * abs(expected)
  return check(what, measured, f"{expected:.6g} (rtol {rtol:g}, atol {atol:g})", ok)


# ------------------------------------------------------------------------------------ plotting

DPI = 110  # every figure's PNG resolution
PANEL = (5.0, 4.0)  # inches (width, height) of one panel of `subplots`
TITLE_SIZE = 10  # font size of a figure's suptitle


def figure(figsize: tuple[float, float], *, title: str | None = None) -> Figure:
  """An empty figure in the house style, for layouts built with `fig.add_gridspec`.

  It is a `matplotlib.figure.Figure` on an Agg canvas, outside pyplot: no display is needed,
  no global backend changes and there is nothing to close. `title` becomes the suptitle.
  """
  fig = Figure(figsize=figsize)
  FigureCanvasAgg(fig)
  if title:
    fig.suptitle(title, fontsize=TITLE_SIZE)
  return fig


def subplots(
  nrows: int = 1,
  ncols: int = 1,
  *,
  panel: tuple[float, float] = PANEL,
  figsize: tuple[float, float] | None = None,
  title: str | None = None,
  **kwargs,
):
  """`figure` with an nrows x ncols grid of axes: (fig, axes) as `pyplot.subplots` returns them.

  Each panel is `panel` inches unless `figsize` sizes the whole figure. `axes` is squeezed as
  in pyplot (one axes, a 1-d array for one row or column) unless `squeeze=False`; other
  keywords (`sharey=`, `gridspec_kw=`) go to `Figure.subplots`.
  """
  if figsize is None:
    figsize = (panel[0] * ncols, panel[1] * nrows)
  fig = figure(figsize, title=title)
  return fig, fig.subplots(nrows, ncols, **kwargs)


def save_figure(
  fig: Figure,
  out_dir,
  name: str,
  *,
  tight: bool = True,
  rect: tuple[float, float, float, float] | None = None,
  **savefig_kwargs,
) -> pathlib.Path:
  """Writes `fig` to out_dir/name.png (creating out_dir) at `DPI` and returns the path.

  `tight`: lay the figure out first with `tight_layout` (within `rect` when given); False for
  figures that placed their axes themselves (`subplots_adjust`, gridspec spacing).
  """
  if tight:
    fig.tight_layout(**({} if rect is None else {"rect": rect}))
  path = pathlib.Path(out_dir) / f"{name}.png"
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, **{"dpi": DPI, **savefig_kwargs})
  return path
