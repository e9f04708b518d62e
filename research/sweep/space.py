"""The search space of a sweep: `KEY=DISTRIBUTION` per key, random or grid points, refinement.

    --space='optimizer.learning_rate=loguniform(1e-4,1e-1)'
    --space='optimizer.beta=uniform(0.8,0.99)'
    --space='optimizer.name=choice(sgd,adam)'
    --space='seed=grid(0,1,2)'

`loguniform(lo, hi)`: log-uniform on [lo, hi] (0 < lo < hi); `uniform(lo, hi)`: uniform
(lo < hi); `choice(a, ...)`: one of the values; `grid(a, ...)`: the values, as a grid axis.
Values are Python literals (1e-3, 7, True, 'adam'), else strings.

Random search (`--method=random`) draws every key independently for each trial: a continuous
distribution anywhere in its range, `choice` and `grid` among their values. Grid search
(`--method=grid`) takes the product of per-key axes: `grid` and `choice` values as given, a
continuous range split into m points evenly on its scale (log-spaced for loguniform), m chosen so
that the product is at most `--trials`. The lecture's point: with the same number of trials, a
grid tries only m values of each key, random search tries one per trial, which wins when only
some keys matter (Bergstra & Bengio 2012).

Refinement (`--refine=K`, the lecture's coarse to fine): the range of each continuous key shrinks
to the span of its K best trials' values, widened by a quarter of that span on each side (in log
space for loguniform), clipped to the original range; a second stage samples there.
"""

import ast
import copy
import itertools
import math
import re
from typing import Any, NamedTuple

import ml_collections
import numpy as np

from research.errors import ConfigError

KINDS = ("loguniform", "uniform", "choice", "grid")
_PATTERN = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*=\s*(\w+)\s*\((.*)\)\s*$")


class Dimension(NamedTuple):
  """One swept key."""

  key: str  # dotted config key, e.g. 'optimizer.learning_rate'
  kind: str  # one of KINDS
  values: tuple  # (lo, hi) for loguniform / uniform, else the listed values

  @property
  def continuous(self) -> bool:
    return self.kind in ("loguniform", "uniform")

  @property
  def log(self) -> bool:
    return self.kind == "loguniform"

  def describe(self) -> str:
    return f"{self.key}={self.kind}({','.join(map(repr, self.values))})"


def _literal(text: str) -> Any:
  text = text.strip()
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def config_value(config: ml_collections.ConfigDict, key: str) -> Any:
  """The value at a dotted key; KeyError naming the key if it does not exist."""
  node = config
  for part in key.split("."):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      raise KeyError(key)
    node = node[part]
  return node


def parse(text: str, config: ml_collections.ConfigDict) -> Dimension:
  """'KEY=kind(a,b,...)' -> Dimension; ValueError (one line) for anything malformed."""
  match = _PATTERN.match(text)
  if not match:
    raise ConfigError(
      f"--space={text!r} is not KEY=DISTRIBUTION(...), e.g. "
      "'optimizer.learning_rate=loguniform(1e-4,1e-1)'"
    )
  key, kind, args = match.groups()
  if kind not in KINDS:
    raise ConfigError(f"--space={text!r}: unknown distribution {kind!r}; use one of {KINDS}")
  try:
    current = config_value(config, key)
  except KeyError:
    raise ConfigError(f"--space={text!r}: the config has no key {key!r}") from None
  values = tuple(_literal(a) for a in args.split(",")) if args.strip() else ()
  if kind in ("loguniform", "uniform"):
    if len(values) != 2 or not all(
      isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
      raise ConfigError(f"--space={text!r}: {kind} takes two numbers, {kind}(lo,hi)")
    lo, hi = (float(v) for v in values)
    if not lo < hi:
      raise ConfigError(f"--space={text!r}: the range [{lo:g}, {hi:g}] is empty; use lo < hi")
    if kind == "loguniform" and lo <= 0:
      raise ConfigError(f"--space={text!r}: a log scale needs 0 < lo, got lo={lo:g}")
    if isinstance(current, int) and not isinstance(current, bool):
      raise ConfigError(f"--space={text!r}: {key} is an integer; use choice(...) or grid(...)")
    values = (lo, hi)
  elif not values:
    raise ConfigError(f"--space={text!r}: {kind}() needs at least one value")
  for value in values:
    _check_type(text, config, key, current, value)
  return Dimension(key, kind, values)


def _check_type(text: str, config: ml_collections.ConfigDict, key: str, current, value) -> None:
  """ConfigError if the config's field `key` cannot hold `value` (a string for a float, ...):
  ml_collections would refuse it with a TypeError only when the trial's config is built."""
  trial = copy.deepcopy(config)  # keeps the fields' types (placeholders too)
  *parents, leaf = key.split(".")
  node = trial
  for part in parents:
    node = node[part]
  try:
    node[leaf] = value
  except TypeError:
    expected = node.get_type(leaf).__name__  # a placeholder's declared type, not NoneType
    raise ConfigError(
      f"--space={text!r}: {value!r} is not a {expected}, as {key} ({current!r}) is; give "
      f"{expected} values"
    ) from None


def apply(config: ml_collections.ConfigDict, point: dict) -> ml_collections.ConfigDict:
  """The base config with a point's values set, as a trial runs it (every trial's config is
  built here); ConfigError naming the key and the value that its field cannot hold."""
  trial = ml_collections.ConfigDict(config.to_dict())
  for key, value in point.items():
    *parents, leaf = key.split(".")
    node = trial
    for part in parents:
      node = node[part]
    try:
      node[leaf] = value
    except TypeError:
      current = config_value(config, key)
      raise ConfigError(
        f"--space: {key}={value!r} is not a {type(current).__name__}, as {key} ({current!r}) is"
      ) from None
  return trial


def _axis(dim: Dimension, m: int) -> list:
  if not dim.continuous:
    return list(dim.values)
  lo, hi = dim.values
  if m == 1:
    return [math.sqrt(lo * hi) if dim.log else (lo + hi) / 2]
  points = np.geomspace(lo, hi, m) if dim.log else np.linspace(lo, hi, m)
  return [float(p) for p in points]


def grid_points(dims: list[Dimension], trials: int) -> list[dict]:
  """The product of per-key axes with at most `trials` points (continuous keys split evenly)."""
  fixed = math.prod(len(d.values) for d in dims if not d.continuous)
  continuous = [d for d in dims if d.continuous]
  if fixed > trials:
    raise ConfigError(
      f"--method=grid: the listed values alone make {fixed} points, more than "
      f"--trials={trials}; raise --trials or list fewer values"
    )
  m = 1
  if continuous:
    m = max(1, int(math.floor((trials / fixed) ** (1 / len(continuous)) + 1e-9)))
  axes = [_axis(d, m) for d in dims]
  return [
    dict(zip((d.key for d in dims), point, strict=True)) for point in itertools.product(*axes)
  ]


def random_points(dims: list[Dimension], trials: int, seed: int) -> list[dict]:
  """`trials` independent draws of every key (seeded: the same seed, the same points)."""
  rng = np.random.default_rng(seed)
  points = []
  for _ in range(trials):
    point = {}
    for d in dims:
      if d.log:
        lo, hi = np.log(d.values[0]), np.log(d.values[1])
        point[d.key] = float(np.exp(rng.uniform(lo, hi)))
      elif d.continuous:
        point[d.key] = float(rng.uniform(*d.values))
      else:
        point[d.key] = d.values[int(rng.integers(len(d.values)))]
    points.append(point)
  return points


def refined(dims: list[Dimension], best: list[dict]) -> list[Dimension]:
  """Continuous keys narrowed around the values of the `best` trials (module docstring)."""
  out = []
  for d in dims:
    if not d.continuous:
      out.append(d)
      continue
    values = np.asarray([b[d.key] for b in best], np.float64)
    scale = np.log if d.log else (lambda x: x)
    unscale = np.exp if d.log else (lambda x: x)
    lo, hi = scale(values.min()), scale(values.max())
    span = hi - lo if hi > lo else 0.25 * abs(scale(d.values[1]) - scale(d.values[0]))
    lo = max(float(unscale(lo - span / 4)), d.values[0])
    hi = min(float(unscale(hi + span / 4)), d.values[1])
    out.append(Dimension(d.key, d.kind, (lo, hi)))
  return out
