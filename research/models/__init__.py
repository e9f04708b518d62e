"""Flax (linen) models of the lecture, chosen by name: `create(name, num_classes=..., **kwargs)`.

    model = create("resnet20", num_classes=10)
    variables = model.init(rng, x, train=False)            # x: (N, H, W, C) float32
    logits, updates = model.apply(variables, x, train=True, rngs={"dropout": key},
                                  mutable=["batch_stats"])

Classifiers return logits (N, num_classes); the FCNs return (N, H, W, num_classes).
Losses and metrics are re-exported from `research.models.losses`.
"""

from research import _extras

_extras.require("train", "research.models")

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn

from research.errors import ConfigError
from research.models import alexnet, densenet, fcn, initializers, layers, mlp, resnet
from research.models.losses import (
  accuracy,
  confusion_iou,
  confusion_matrix,
  eval_metrics,
  iou_from_confusion,
  l1_penalty,
  l2_penalty,
  mean_iou,
  multiclass_svm_loss,
  softmax_cross_entropy,
  top_k_accuracy,
)

__all__ = [
  "MODELS",
  "create",
  "count_params",
  "options",
  "head_pattern",
  "with_batch_axis",
  "accuracy",
  "confusion_iou",
  "confusion_matrix",
  "eval_metrics",
  "iou_from_confusion",
  "l1_penalty",
  "l2_penalty",
  "mean_iou",
  "multiclass_svm_loss",
  "softmax_cross_entropy",
  "top_k_accuracy",
]

# name -> constructor (a module class or a functools.partial of one).
MODELS: dict[str, Callable[..., nn.Module]] = {
  "linear": mlp.Linear,
  "mlp": mlp.MLP,
  "alexnet": alexnet.AlexNet,
  "alexnet_cifar": alexnet.AlexNetCifar,
  **{f"resnet{d}": functools.partial(resnet.CifarResNet, depth=d) for d in (20, 32, 44, 56, 110)},
  **{
    f"plain{d}": functools.partial(resnet.CifarResNet, depth=d, shortcut=False)
    for d in (20, 32, 44, 56, 110)
  },
  "resnet18": resnet.ResNet18,
  "resnet34": resnet.ResNet34,
  "resnet50": resnet.ResNet50,
  "densenet_bc_100": densenet.DenseNetBC100,
  "densenet121": densenet.DenseNet121,
  "vgg16": fcn.VGG16,
  "fcn32s": functools.partial(fcn.FCN, skips=()),
  "fcn16s": functools.partial(fcn.FCN, skips=("pool4",)),
  "fcn8s": functools.partial(fcn.FCN, skips=("pool4", "pool3")),
}


def options(name: str) -> dict[str, tuple[Any, Any]]:
  """The options `create(name, ...)` takes: {field: (its annotation, its default)}.

  The fields of the module class `name` builds, but num_classes (an argument of its own) and
  Flax's parent / name; the default is the one `name` binds (resnet56's depth=56) or else the
  class's own (`dataclasses.MISSING` for none). Raises ConfigError for an unknown name.
  """
  if name not in MODELS:
    raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
  ctor, bound = MODELS[name], {}
  while isinstance(ctor, functools.partial):
    bound = {**ctor.keywords, **bound}  # an outer partial's keywords win
    ctor = ctor.func
  return {
    f.name: (f.type, bound.get(f.name, f.default))
    for f in dataclasses.fields(ctor)
    if f.name not in ("parent", "name", "num_classes")
  }


def _check_kwargs(name: str, kwargs: dict) -> None:
  """Validates keyword names and the activation / norm / initializer names they carry."""
  fields = set(options(name))
  unknown = sorted(set(kwargs) - fields)
  if unknown:
    raise ConfigError(f"model {name!r} does not take {unknown}; its options are {sorted(fields)}")
  if "activation" in kwargs:
    layers.check_activation(kwargs["activation"], allow_maxout=name == "mlp")
  if "norm" in kwargs:
    layers.check_norm(kwargs["norm"])
  for key in ("kernel_init", "bias_init"):
    if key in kwargs:
      initializers.get(kwargs[key])


def create(name: str, *, num_classes: int, **kwargs) -> nn.Module:
  """Returns the model called `name` with `num_classes` outputs.

  Args:
    name: one of `MODELS` ("linear", "mlp", "alexnet", "alexnet_cifar", "resnet20/32/44/56/110",
      "plain20/32/44/56/110", "resnet18/34/50", "densenet_bc_100", "densenet121", "vgg16",
      "fcn32s", "fcn16s", "fcn8s").
    num_classes: number of classes (logits per example, or per pixel for the FCNs).
    **kwargs: the model's options (e.g. `activation`, `norm`, `kernel_init`, `axis_name`,
      `width`); see each module's docstring.

  Raises:
    research.errors.ConfigError (a ValueError): for an unknown model name, option, activation,
      norm or initializer name.
  """
  if name not in MODELS:
    raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
  if not isinstance(num_classes, int) or num_classes < 1:
    raise ValueError(f"num_classes={num_classes!r} must be a positive integer")
  _check_kwargs(name, kwargs)
  return MODELS[name](num_classes=num_classes, **kwargs)


def head_pattern(model: nn.Module) -> str:
  """A regex matching the '/'-joined parameter paths of `model`'s output layer(s).

  These are the layers whose shapes follow `num_classes` ('head', 'fc8', 'linear', the FCNs'
  'score_*'); fine-tuning re-initializes them when the number of classes changes. Each model
  class names its own in `HEAD`.
  """
  return rf"(^|/)({type(model).HEAD})(/|$)"


def with_batch_axis(model: nn.Module, axis_name: str) -> nn.Module:
  """`model` with its BatchNorm statistics averaged over the device axis `axis_name`.

  Models without BatchNorm (no `axis_name` option) come back unchanged, and so does a model
  whose `axis_name` was already set.
  """
  if getattr(model, "axis_name", "absent") is None:
    return model.clone(axis_name=axis_name)
  return model


def count_params(tree) -> int:
  """The number of scalars in a parameter tree (arrays or `jax.ShapeDtypeStruct`s)."""
  import jax
  import numpy as np

  return int(sum(np.prod(x.shape, dtype=np.int64) for x in jax.tree.leaves(tree)))
