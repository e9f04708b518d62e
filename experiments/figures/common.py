"""What every figure module shares: the result record, checks and the figure contract.

A figure module `experiments/figures/<NAME>.py` defines

    NAME: str                    # the file stem, e.g. "lr_regimes"
    TITLE: str                   # one line
    CAPTION: str                 # what the figure shows and what the lecture claims
    get_config(full: bool = False) -> ml_collections.ConfigDict
    run(config) -> FigureResult  # the computation and its checks; no drawing
    plot(result, out_dir) -> list[pathlib.Path]   # writes out_dir/NAME.png (and NAME.gif)

so that tests run `run(config)` at reduced size without drawing anything.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Any

import numpy as np


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


@dataclasses.dataclass
class FigureResult:
  """A figure's computation: its key numbers (`data`) and its checks."""

  name: str
  title: str
  caption: str
  checks: list[Check]
  data: dict

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


def check_close(what: str, measured: float, expected: float, rtol: float = 0.1,
                atol: float = 0.0) -> Check:
  """Check that `|measured - expected| <= atol + rtol |expected|`."""
  ok = abs(measured - expected) <= atol + rtol * abs(expected)
  return check(what, measured, f"{expected:.6g} (rtol {rtol:g}, atol {atol:g})", ok)


def save_figure(fig, out_dir, name: str, dpi: int = 100, **savefig_kwargs) -> pathlib.Path:
  """Writes `fig` to out_dir/name.png (creating out_dir), closes it, and returns the path."""
  import matplotlib.pyplot as plt  # noqa: PLC0415 (plotting stays out of run())

  path = pathlib.Path(out_dir) / f"{name}.png"
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=dpi, **savefig_kwargs)
  plt.close(fig)
  return path
