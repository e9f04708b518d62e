"""Weight initializers chosen by name, so that configs can say `kernel_init="he_normal"`.

The lecture's cases (fan_in = n_k inputs, fan_out = n_{k+1} outputs; for a convolution both are
multiplied by the receptive field size):

| name | distribution | variance |
|---|---|---|
| `zeros` | W = 0 (every unit learns the same thing) | 0 |
| `normal` / `normal_0.01` | N(0, 0.01^2), the slides' "small random numbers" | 1e-4 |
| `normal_1` | N(0, 1), the slides' exploding case | 1 |
| `xavier_uniform` | U(-sqrt(6 / (fan_in + fan_out)), +...) | 2 / (fan_in + fan_out) |
| `xavier_normal` | N(0, 2 / (fan_in + fan_out)) | 2 / (fan_in + fan_out) |
| `he_normal` | N(0, 2 / fan_in) (Kaiming, for ReLU) | 2 / fan_in |
| `he_uniform` | U(-sqrt(6 / fan_in), +sqrt(6 / fan_in)) | 2 / fan_in |
| `lecun_normal` | N(0, 1 / fan_in) | 1 / fan_in |
| `lecun_uniform` | U(-sqrt(3 / fan_in), +sqrt(3 / fan_in)) | 1 / fan_in |
| `heuristic_uniform` | U(-1 / sqrt(fan_in), +1 / sqrt(fan_in)), notes 002 ~202 | 1 / (3 fan_in) |

`glorot_*` and `kaiming_*` are aliases. The notes write Kaiming's uniform range as
sqrt(2) / sqrt(n_k); we use the variance-preserving form of He et al. (2015), Var = 2 / fan_in,
whose uniform bound is sqrt(6 / fan_in). `heuristic_uniform` is Goodfellow et al.'s heuristic
(8.4), Glorot & Bengio's "standard" initialization and PyTorch's default for `nn.Linear` /
`nn.Conv2d` weights.

The normal ones are untruncated (jax's `he_normal` etc. truncate). Every name maps to a
`jax.nn.initializers` initializer `init(key, shape, dtype) -> array`.
"""

from collections.abc import Callable

import jax
from jax.nn import initializers as jinit

from research.errors import ConfigError

Initializer = Callable[..., jax.Array]

_NAMED: dict[str, Callable[[], Initializer]] = {
  "zeros": lambda: jinit.zeros,
  "ones": lambda: jinit.ones,
  "normal": lambda: jinit.normal(stddev=0.01),
  "normal_0.01": lambda: jinit.normal(stddev=0.01),
  "normal_1": lambda: jinit.normal(stddev=1.0),
  "xavier_uniform": lambda: jinit.variance_scaling(1.0, "fan_avg", "uniform"),
  "xavier_normal": lambda: jinit.variance_scaling(1.0, "fan_avg", "normal"),
  "glorot_uniform": lambda: jinit.variance_scaling(1.0, "fan_avg", "uniform"),
  "glorot_normal": lambda: jinit.variance_scaling(1.0, "fan_avg", "normal"),
  "he_normal": lambda: jinit.variance_scaling(2.0, "fan_in", "normal"),
  "he_uniform": lambda: jinit.variance_scaling(2.0, "fan_in", "uniform"),
  "kaiming_normal": lambda: jinit.variance_scaling(2.0, "fan_in", "normal"),
  "kaiming_uniform": lambda: jinit.variance_scaling(2.0, "fan_in", "uniform"),
  "lecun_normal": lambda: jinit.variance_scaling(1.0, "fan_in", "normal"),
  "lecun_uniform": lambda: jinit.variance_scaling(1.0, "fan_in", "uniform"),
  # bound sqrt(3 scale / fan_in) = 1 / sqrt(fan_in) at scale 1/3
  "heuristic_uniform": lambda: jinit.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
}

NAMES = tuple(_NAMED)


def get(name: str | Initializer, *, stddev: float | None = None) -> Initializer:
  """Returns the initializer called `name` (or `name` itself when it is already callable).

  Args:
    name: one of `NAMES`, or an initializer function (passed through unchanged).
    stddev: only with `name="normal"`: the standard deviation of N(0, stddev^2)
      (default 0.01, the slides' small-random-number case).

  Returns:
    `init(key, shape, dtype=jnp.float32) -> jax.Array`.

  Raises:
    ConfigError: for an unknown name, listing the known ones.
  """
  if callable(name):
    return name
  if not isinstance(name, str) or name not in _NAMED:
    raise ConfigError(f"unknown initializer {name!r}; choose one of {', '.join(NAMES)}")
  if stddev is not None:
    if name != "normal":
      raise ConfigError(f"stddev={stddev} applies only to initializer 'normal', not {name!r}")
    return jinit.normal(stddev=stddev)
  return _NAMED[name]()


def constant(value: float) -> Initializer:
  """All entries equal to `value` (AlexNet's biases of 1 in conv2, conv4, conv5 and fc)."""
  return jinit.constant(value)
