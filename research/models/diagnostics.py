"""Per-layer activation statistics and gradient norms, without touching model code.

Activations come from Flax's `capture_intermediates` (the output of every submodule's
`__call__`); by default only the `layers.Activation` modules are kept, i.e. the post-activation
values h_l of the slides' initialization experiments (10 tanh layers of 500 units, N(0, 0.01)
vs N(0, 1) vs Xavier, ReLU with Xavier vs He). Gradient norms are ||dL/dtheta_l||_2 over the
parameters of each module (kernel and bias together), for the vanishing-gradient figures.
"""

from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from research.models import layers, losses

Array = jax.Array


class LayerStats(NamedTuple):
  """Statistics of one layer's output over all its entries (batch and features)."""

  name: str  # module path, e.g. "act_3" or "stage1_block1/act2"
  mean: Array  # () float32
  std: Array  # () float32


def _only_activations(module: nn.Module, method_name: str) -> bool:
  return method_name == "__call__" and isinstance(module, layers.Activation)


def _every_module(module: nn.Module, method_name: str) -> bool:
  del module
  return method_name == "__call__"


def activation_stats(
  model: nn.Module,
  variables: dict,
  x: Array,
  *,
  train: bool = False,
  every_module: bool = False,
  rngs: dict | None = None,
) -> list[LayerStats]:
  """Mean and standard deviation of each layer's output on the batch `x`, in call order.

  Args:
    model: any model of this package.
    variables: its variables.
    x: an input batch.
    train: run in training mode (batch statistics; dropout needs `rngs={'dropout': key}`).
    every_module: record every submodule's output (convs, norms, blocks) instead of only the
      activation functions'.
    rngs: RNGs for the apply call.

  Returns:
    A list of `LayerStats`, one per recorded call.
  """
  mutable = ["intermediates", "batch_stats"] if train else ["intermediates"]
  _, state = model.apply(
    variables,
    x,
    train=train,
    rngs=rngs,
    mutable=mutable,
    capture_intermediates=_every_module if every_module else _only_activations,
  )
  stats = []

  def visit(tree, prefix):
    for key, value in tree.items():
      if key == "__call__":
        for out in value:
          if isinstance(out, jax.Array):
            o = out.astype(jnp.float32)
            stats.append(LayerStats(prefix or "<model>", o.mean(), o.std()))
      elif isinstance(value, dict):
        visit(value, f"{prefix}/{key}" if prefix else key)

  visit(state["intermediates"], "")
  return stats


def grouped_norms(tree: dict) -> dict[str, Array]:
  """The L2 norm of each module's leaves together: {'dense_0': ||(W, b)||, ...}."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  sums: dict[str, Array] = {}
  for path, leaf in flat:
    keys = [str(getattr(p, "key", p)) for p in path[:-1]]
    name = "/".join(keys) or "<root>"
    sums[name] = sums.get(name, 0.0) + jnp.sum(jnp.square(leaf.astype(jnp.float32)))
  return {name: jnp.sqrt(s) for name, s in sums.items()}


def gradient_norms(
  model: nn.Module,
  variables: dict,
  x: Array,
  labels: Array,
  *,
  loss_fn: Callable[[Array, Array], Array] = losses.softmax_cross_entropy,
  train: bool = False,
  rngs: dict | None = None,
) -> dict[str, Array]:
  """Per-module gradient norms ||dL/dtheta_l|| of `loss_fn(model(x), labels)`.

  Returns:
    {module path: norm}, in the parameter tree's (sorted) order.
  """
  others = {k: v for k, v in variables.items() if k != "params"}

  def loss(params):
    out = model.apply(
      {"params": params, **others},
      x,
      train=train,
      rngs=rngs,
      mutable=["batch_stats"] if train else False,
    )
    logits = out[0] if train else out
    return loss_fn(logits, labels)

  return grouped_norms(jax.grad(loss)(variables["params"]))
