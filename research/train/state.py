"""The train state: everything a step reads and writes, as one pytree that Orbax saves whole."""

import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  """One pytree of arrays (no functions inside, so it checkpoints and shards as is).

  Fields:
    step: () int32, the number of optimizer steps taken.
    params: the model's 'params' collection.
    batch_stats: the 'batch_stats' collection ({} for models without BatchNorm).
    opt_state: the optax chain's state.
    plateau: reduce-on-plateau state (advanced by evaluations), or () when it is off.
    rng: (2,) uint32 base key; step k uses fold_in(rng, k) (and per device fold_in(., device)),
      so it never changes and a resumed run draws the same dropout masks.
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  plateau: Any
  rng: jax.Array


def init_variables(model: nn.Module, rng: jax.Array, image_shape: tuple[int, ...]) -> dict:
  """Initializes the model on one dummy example (N=1, H, W, C), in evaluation mode.

  Compiled as one program; on the CPU at XLA's optimization level 0: it runs once, and its
  random initializers take XLA:CPU seconds to optimize (ResNet-20: 9.4 s at the default level,
  1.8 s at 0), for values that differ by at most one ulp.
  """
  rng = jnp.asarray(rng)
  return _compiled_init(
    model, tuple(image_shape), jax.default_backend(), jax.ShapeDtypeStruct(rng.shape, rng.dtype)
  )(rng)


@functools.lru_cache(maxsize=32)
def _compiled_init(
  model: nn.Module, image_shape: tuple[int, ...], backend: str, rng: jax.ShapeDtypeStruct
):
  """One compiled init per (model, shape): the trials of a sweep, the runs of a figure and a
  resumed run reuse it (lowering alone costs tens of milliseconds per call)."""
  dummy = jnp.zeros((1, *image_shape), jnp.float32)
  init = jax.jit(lambda r: model.init({"params": r, "dropout": r}, dummy, train=False))
  options = {"xla_backend_optimization_level": 0} if backend == "cpu" else {}
  return init.lower(rng).compile(compiler_options=options)


def create_train_state(
  variables: dict,
  tx: optax.GradientTransformation,
  plateau: optax.GradientTransformationExtraArgs | None,
  rng: jax.Array,
) -> TrainState:
  """The state at step 0 from initialized `variables` ({'params', ['batch_stats']})."""
  params = variables["params"]
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats=variables.get("batch_stats", {}),
    opt_state=tx.init(params),
    plateau=plateau_init(plateau),
    rng=rng,
  )


def plateau_init(plateau: optax.GradientTransformationExtraArgs | None):
  """Reduce-on-plateau state; it acts on a scalar, the scale then multiplies every update."""
  return () if plateau is None else plateau.init(jnp.zeros((), jnp.float32))


def plateau_scale(plateau_state) -> jax.Array:
  """The current multiplier of the updates (1.0 when reduce-on-plateau is off)."""
  if plateau_state == ():
    return jnp.ones((), jnp.float32)
  return jnp.asarray(plateau_state.scale, jnp.float32)
