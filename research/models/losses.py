"""Losses, penalties and metrics of the lecture, as pure jnp functions.

Shapes: logits (..., C), integer labels (...) — (N,) for classification, (N, H, W) for
segmentation. Optional `weights` (e.g. the evaluation batch's padding `mask`, shape (N,) or the
labels' shape) weight each example in the mean; a weight of 0 removes it.
"""

import jax
import jax.numpy as jnp

Array = jax.Array


def _weighted_mean(values: Array, weights: Array | None) -> Array:
  """sum_i w_i v_i / sum_i w_i, with `weights` broadcast over the trailing axes of `values`."""
  if weights is None:
    return values.mean()
  w = jnp.asarray(weights, values.dtype)
  w = jnp.broadcast_to(w.reshape(w.shape + (1,) * (values.ndim - w.ndim)), values.shape)
  return (values * w).sum() / jnp.maximum(w.sum(), 1e-12)


def _check(logits: Array, labels: Array) -> None:
  if logits.shape[:-1] != labels.shape:
    raise ValueError(
      f"logits {logits.shape} and labels {labels.shape} disagree: logits must be "
      "labels.shape + (num_classes,) with integer labels"
    )


def softmax_cross_entropy(logits: Array, labels: Array, weights: Array | None = None) -> Array:
  """Mean softmax cross-entropy: L_i = -log softmax(s_i)_{y_i} = -s_{i,y_i} + log sum_j e^{s_ij}.

  Args:
    logits: (..., C) scores s.
    labels: (...) integer classes y in [0, C).
    weights: optional per-example weights (see the module docstring).

  Returns:
    The scalar mean of L_i over examples (and pixels).
  """
  _check(logits, labels)
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(logp, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
  return _weighted_mean(nll, weights)


def multiclass_svm_loss(
  logits: Array, labels: Array, margin: float = 1.0, weights: Array | None = None
) -> Array:
  """Mean multiclass SVM (hinge) loss: L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin)."""
  _check(logits, labels)
  s = logits.astype(jnp.float32)
  s_y = jnp.take_along_axis(s, labels[..., None].astype(jnp.int32), axis=-1)
  hinge = jnp.maximum(0.0, s - s_y + margin)
  not_y = jax.nn.one_hot(labels, s.shape[-1], dtype=s.dtype) == 0
  return _weighted_mean(jnp.where(not_y, hinge, 0.0).sum(-1), weights)


def _penalized_leaves(params, weights_only: bool) -> list[Array]:
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  if not weights_only:
    return [leaf for _, leaf in flat]
  leaves = [leaf for path, leaf in flat if getattr(path[-1], "key", None) == "kernel"]
  if not leaves and flat:
    raise ValueError(
      "weights_only=True found no 'kernel' leaves to penalize; pass Flax params "
      "or weights_only=False to penalize every leaf"
    )
  return leaves


def l2_penalty(params, *, weights_only: bool = True) -> Array:
  """R(W) = sum_k sum_l W_kl^2 (the slides' L2 term; the loss adds lambda R(W)).

  With `weights_only` (default) only leaves named 'kernel' (Dense/Conv weights W) count, not
  biases or normalization scales.
  """
  return sum(
    (jnp.sum(jnp.square(x.astype(jnp.float32))) for x in _penalized_leaves(params, weights_only)),
    jnp.float32(0.0),
  )


def l1_penalty(params, *, weights_only: bool = True) -> Array:
  """R(W) = sum_k sum_l |W_kl| over the 'kernel' leaves (all leaves if not `weights_only`)."""
  return sum(
    (jnp.sum(jnp.abs(x.astype(jnp.float32))) for x in _penalized_leaves(params, weights_only)),
    jnp.float32(0.0),
  )


def accuracy(logits: Array, labels: Array, weights: Array | None = None) -> Array:
  """Top-1 accuracy: the fraction with argmax_j s_j == y (ties go to the lowest index)."""
  _check(logits, labels)
  return _weighted_mean((jnp.argmax(logits, -1) == labels).astype(jnp.float32), weights)


def top_k_accuracy(logits: Array, labels: Array, k: int, weights: Array | None = None) -> Array:
  """Top-k accuracy: the fraction whose true class has one of the k largest scores.

  Counted as: fewer than k classes score strictly higher than the true class.
  """
  _check(logits, labels)
  s_y = jnp.take_along_axis(logits, labels[..., None].astype(jnp.int32), axis=-1)
  rank = (logits > s_y).sum(-1)
  return _weighted_mean((rank < k).astype(jnp.float32), weights)


def confusion_matrix(
  logits: Array, labels: Array, num_classes: int, weights: Array | None = None
) -> Array:
  """(num_classes, num_classes) counts, rows = true class, columns = predicted class.

  Labels outside [0, num_classes) (e.g. a 255 "void" label) are ignored. Summing these matrices
  over batches gives the dataset's confusion, from which `iou_from_confusion` gives IoU.
  """
  _check(logits, labels)
  pred = jnp.argmax(logits, -1).reshape(-1)
  true = labels.reshape(-1).astype(jnp.int32)
  w = jnp.ones(true.shape, jnp.float32)
  if weights is not None:
    wa = jnp.asarray(weights, jnp.float32)
    w = jnp.broadcast_to(
      wa.reshape(wa.shape + (1,) * (labels.ndim - wa.ndim)), labels.shape
    ).reshape(-1)
  valid = (true >= 0) & (true < num_classes)
  idx = jnp.where(valid, true * num_classes + pred, 0)
  counts = jnp.zeros(num_classes * num_classes, jnp.float32).at[idx].add(jnp.where(valid, w, 0))
  return counts.reshape(num_classes, num_classes)


def iou_from_confusion(confusion: Array) -> Array:
  """Per-class IoU_c = TP_c / (TP_c + FP_c + FN_c); NaN for a class absent from both."""
  tp = jnp.diag(confusion)
  union = confusion.sum(0) + confusion.sum(1) - tp
  return jnp.where(union > 0, tp / jnp.where(union > 0, union, 1.0), jnp.nan)


def confusion_iou(
  logits: Array, labels: Array, num_classes: int, weights: Array | None = None
) -> Array:
  """Per-class IoU (num_classes,) of one batch (NaN for classes that occur nowhere)."""
  return iou_from_confusion(confusion_matrix(logits, labels, num_classes, weights))


def mean_iou(logits: Array, labels: Array, num_classes: int, weights: Array | None = None) -> Array:
  """Mean of the per-class IoU over the classes present in labels or predictions."""
  return jnp.nanmean(confusion_iou(logits, labels, num_classes, weights))


TOP5_MIN_CLASSES = 100  # top-5 accuracy is reported from this many classes on (ImageNet, CIFAR-100)


def eval_metrics(task: str, num_classes: int) -> tuple[str, ...]:
  """The metrics an evaluation of a `task` model with `num_classes` outputs reports.

  Classification: accuracy and loss, plus top-5 accuracy from TOP5_MIN_CLASSES classes on.
  Segmentation: mean IoU (over the classes present, from `iou_from_confusion`), pixel accuracy
  (also reported as accuracy) and loss.
  """
  if task == "segmentation":
    return ("mean_iou", "pixel_accuracy", "accuracy", "loss")
  if task == "classification":
    return ("accuracy", "loss") + (("top5_accuracy",) if num_classes >= TOP5_MIN_CLASSES else ())
  raise ValueError(f"unknown task {task!r}; expected 'classification' or 'segmentation'")
