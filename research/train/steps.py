"""Pure train and eval steps, written for one device's shard of the batch.

Both run inside `parallel.data_parallel` (shard_map over the mesh axis 'batch'): each device sees
(per_device_batch, H, W, C) images; the named axis averages gradients, batch statistics and
metrics. With `axis_name=None` they are plain single-device functions (used in tests).
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from research.errors import ConfigError
from research.models import losses
from research.train.state import TrainState, plateau_scale

LOSSES: dict[str, Callable] = {
  "softmax_cross_entropy": losses.softmax_cross_entropy,
  "multiclass_svm": losses.multiclass_svm_loss,
}


def get_loss(name: str) -> Callable:
  if name not in LOSSES:
    raise ConfigError(f"loss={name!r} is unknown; use one of {sorted(LOSSES)}")
  return LOSSES[name]


def _variables(state: TrainState, params) -> dict:
  if jax.tree.leaves(state.batch_stats):
    return {"params": params, "batch_stats": state.batch_stats}
  return {"params": params}


def step_rng(state: TrainState, axis_name: str | None) -> jax.Array:
  """Dropout key of this step and device: fold_in(fold_in(rng, step), device index)."""
  rng = jax.random.fold_in(state.rng, state.step)
  if axis_name is not None:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  return rng


def make_train_step(
  model: nn.Module,
  tx: optax.GradientTransformation,
  *,
  loss: str = "softmax_cross_entropy",
  axis_name: str | None = "batch",
  extra_metrics: Callable[[dict, dict], dict] | None = None,
):
  """Returns train_step(state, batch) -> (state, metrics) for one device's shard.

  g = pmean over devices of grad L(params; shard), so with equal shards g is the gradient of the
  global batch's mean loss; BatchNorm statistics come from the whole global batch (the model's
  `axis_name`), and the running averages are pmean-ed as well. The update of the optax chain is
  multiplied by the reduce-on-plateau scale. Metrics (loss, accuracy, grad_norm) are
  global-batch means; `extra_metrics(grads, updates) -> dict` adds more (e.g. the update's
  norm, per-layer gradient norms), computed from the averaged gradient and the final update.
  """
  loss_fn = get_loss(loss)

  def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    has_bs = bool(jax.tree.leaves(state.batch_stats))
    rng = step_rng(state, axis_name)

    def objective(params):
      out = model.apply(
        _variables(state, params),
        batch["image"],
        train=True,
        rngs={"dropout": rng},
        mutable=["batch_stats"] if has_bs else False,
      )
      logits, new_vars = out if has_bs else (out, {})
      return loss_fn(logits, batch["label"]), (logits, new_vars.get("batch_stats", {}))

    (loss_value, (logits, batch_stats)), grads = jax.value_and_grad(objective, has_aux=True)(
      state.params
    )
    if axis_name is not None:
      grads = jax.lax.pmean(grads, axis_name)
      batch_stats = jax.lax.pmean(batch_stats, axis_name)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    scale = plateau_scale(state.plateau)
    updates = jax.tree.map(lambda u: (u * scale).astype(u.dtype), updates)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss_value, "accuracy": losses.accuracy(logits, batch["label"])}
    if axis_name is not None:
      metrics = jax.lax.pmean(metrics, axis_name)
    metrics["grad_norm"] = optax.tree.norm(grads)  # grads are already averaged
    if extra_metrics is not None:
      metrics.update(extra_metrics(grads, updates))
    new_state = state.replace(
      step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state
    )
    return new_state, metrics

  return train_step


def make_eval_step(
  model: nn.Module,
  *,
  num_classes: int,
  task: str = "classification",
  loss: str = "softmax_cross_entropy",
  axis_name: str | None = "batch",
):
  """Returns eval_step(state, batch) -> sums over the real (mask == 1) examples of all devices.

  Sums (not means) so that batches and the padded last batch add up exactly: `loss` and
  `accuracy` are sums of per-batch means times example counts, `count` the number of examples;
  segmentation adds the (C, C) pixel `confusion` matrix. `summarize` turns them into metrics.
  """
  loss_fn = get_loss(loss)

  def eval_step(state: TrainState, batch: dict) -> dict:
    logits = model.apply(_variables(state, state.params), batch["image"], train=False)
    labels = batch["label"]
    mask = batch.get("mask", jnp.ones(labels.shape[:1], jnp.float32))
    count = mask.sum()
    sums = {"loss": loss_fn(logits, labels, weights=mask) * count, "count": count}
    if task == "segmentation":
      sums["confusion"] = losses.confusion_matrix(logits, labels, num_classes, weights=mask)
    else:
      sums["accuracy"] = losses.accuracy(logits, labels, weights=mask) * count
      if "top5_accuracy" in losses.eval_metrics(task, num_classes):
        sums["top5_accuracy"] = losses.top_k_accuracy(logits, labels, 5, weights=mask) * count
    if axis_name is not None:
      sums = jax.lax.psum(sums, axis_name)
    return sums

  return eval_step


def summarize(sums: dict) -> dict[str, float]:
  """Metrics from the eval sums added over all batches (NumPy, on the host)."""
  count = float(sums["count"])
  if count == 0:
    raise ConfigError(
      "the evaluated split yielded no examples; check dataset.validation and dataset.test_split"
    )
  out = {"loss": float(sums["loss"]) / count}
  for key in ("accuracy", "top5_accuracy"):
    if key in sums:
      out[key] = float(sums[key]) / count
  if "confusion" in sums:
    confusion = np.asarray(sums["confusion"], np.float32)
    iou = np.asarray(losses.iou_from_confusion(confusion))  # NaN for classes absent everywhere
    out["pixel_accuracy"] = float(np.trace(confusion) / max(confusion.sum(), 1.0))
    out["mean_iou"] = float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0
    out["accuracy"] = out["pixel_accuracy"]
  return out
