"""A small jitted training loop over in-memory arrays, shared by the part-2 figures.

    result = fit(model, tx, (x_train, y_train), (x_val, y_val),
                 batch_size=64, steps=2000, seed=0, eval_every=100)

`model` is any Flax linen classifier following the `research.models` call convention
(`init(rng, x, train=False)`, `apply(variables, x, train=True, rngs={'dropout': k},
mutable=['batch_stats'])`), `tx` any optax transformation (normally from `research.optim`).
Training runs `eval_every` steps at a time inside one `lax.scan`; mini-batches are drawn
uniformly with replacement from the training arrays, which stay on the device.

Per step it records the loss, the global gradient norm, the global update norm and, when
asked, the gradient norm of every layer (a module of `params`, as
`research.models.diagnostics.grouped_norms` groups them). At every
evaluation point it computes loss and accuracy on the training arrays (first `eval_size`
examples) and on the validation arrays, and optionally a user `probe(variables)`.

`stat_batch_size` splits each mini-batch into groups that are normalized separately, as
per-device BatchNorm does across devices without synchronised statistics (Wu & He 2018): the
gradient is the mean over groups and the running statistics are the mean of the groups'.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

Array = jax.Array


class FitResult(NamedTuple):
  """Curves of one training run (NumPy arrays) and its final variables."""

  eval_steps: np.ndarray        # (E,) steps at which the model was evaluated (0 = init)
  train_loss: np.ndarray        # (E,) loss on the training arrays (first eval_size)
  train_accuracy: np.ndarray    # (E,)
  val_loss: np.ndarray          # (E,)
  val_accuracy: np.ndarray      # (E,)
  step_loss: np.ndarray         # (steps,) mini-batch loss at each step
  grad_norm: np.ndarray         # (steps,) global gradient norm ||g||_2 at each step
  update_norm: np.ndarray       # (steps,) global norm of the optimizer's update
  layer_names: list[str]        # module paths of the parameters, in network order
  layer_grad_norms: np.ndarray | None  # (steps, L) per-layer gradient norms, or None
  probes: Any                   # pytree of (E, ...) arrays from `probe`, or None
  variables: Any                # final variables (params and batch_stats)


@functools.lru_cache(maxsize=8)
def _load(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  from research.data import load_arrays  # noqa: PLC0415 (TFDS only when data is needed)
  return load_arrays(name, split)


def load_data(prefer: str = "digits", *, max_train: int | None = None,
              max_val: int | None = None, seed: int = 0
              ) -> tuple[str, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
  """Real training and held-out arrays from `research.data.load_arrays`, cached per process.

  `prefer="fashion_mnist_idx"` falls back to "digits" when the Fashion-MNIST files are not
  installed (Debian package dataset-fashion-mnist); any other missing dataset (a TFDS name that
  is not prepared, a wrong `idx:DIR`) raises `research.data.DatasetNotFoundError` with the way
  to prepare it. Subsets (`max_train`, `max_val`) are drawn at random with `seed`, without
  replacement.

  Returns:
    (dataset name that ran, (x_train, y_train), (x_val, y_val)), images (N, H, W, C) float32.
  """
  try:
    train, val = _load(prefer, "train"), _load(prefer, "test")
    name = prefer
  except FileNotFoundError:
    if prefer != "fashion_mnist_idx":
      raise
    train, val = _load("digits", "train"), _load("digits", "test")
    name = "digits"
  rng = np.random.default_rng(seed)

  def subset(arrays, limit):
    if limit is None or limit >= len(arrays[0]):
      return arrays
    idx = np.sort(rng.choice(len(arrays[0]), limit, replace=False))
    return arrays[0][idx], arrays[1][idx]
  return name, subset(train, max_train), subset(val, max_val)


def _layer_order(name: str) -> tuple:
  """Sorts 'dense_10' after 'dense_2' and 'head' last: by the first module's trailing integer."""
  first = name.split("/")[0]
  match = re.search(r"(\d+)$", first)
  return (int(match.group(1)) if match else 1 << 30, name)


def layer_names(params: dict) -> list[str]:
  """Module paths of `params` (as `research.models.diagnostics.grouped_norms` names them),
  in network order for numbered layers ('dense_0', ..., 'dense_9', then 'head')."""
  from research.models import diagnostics  # noqa: PLC0415
  return sorted(diagnostics.grouped_norms(params).keys(), key=_layer_order)


def layer_grad_norms(grads: dict, names: list[str]) -> Array:
  """Per-layer norms ||dL/dtheta_l||_2 (kernel and bias together) in the order of `names`. (L,)."""
  from research.models import diagnostics  # noqa: PLC0415
  norms = diagnostics.grouped_norms(grads)
  return jnp.stack([norms[n] for n in names])


def _default_loss(logits: Array, labels: Array) -> Array:
  from research.models import softmax_cross_entropy  # noqa: PLC0415 (kept lazy)
  return softmax_cross_entropy(logits, labels)


def _correct(logits: Array, labels: Array) -> Array:
  """Per-example accuracy (N,): 0/1 for classification, the pixel fraction for segmentation."""
  hit = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  return hit.reshape(hit.shape[0], -1).mean(1)


def _chunks(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
  """Pads x to a multiple of `size` and reshapes to (n_chunks, size, ...); returns the mask."""
  n = len(x)
  n_chunks = -(-n // size)
  pad = n_chunks * size - n
  mask = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
  x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
  return x.reshape(n_chunks, size, *x.shape[1:]), mask.reshape(n_chunks, size)


def fit(model, tx: optax.GradientTransformation,
        train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], *,
        batch_size: int, steps: int, seed: int = 0, eval_every: int | None = None,
        eval_size: int = 2048, eval_batch_size: int = 1024,
        loss_fn: Callable[[Array, Array], Array] | None = None,
        per_layer_grads: bool = False, augment: Callable[[Array, Array], Array] | None = None,
        probe: Callable[[Any], Any] | None = None, variables: Any = None,
        stat_batch_size: int | None = None) -> FitResult:
  """Trains `model` with `tx` on in-memory arrays and returns its curves.

  Args:
    model: a Flax linen module taking NHWC float32 images and `train=`; returns logits.
    tx: an optax GradientTransformation (the same one at every step).
    train: (images (N, H, W, C) float32, integer labels (N,)).
    val: validation arrays of the same kind.
    batch_size: examples per step, drawn uniformly with replacement.
    steps: number of optimizer steps.
    seed: seeds the initialization, the batch draws, dropout and `augment`.
    eval_every: steps between evaluations (default: about 20 evaluations in all).
    eval_size: training examples used to measure the training loss/accuracy.
    eval_batch_size: chunk size of the evaluation passes.
    loss_fn: loss(logits, labels) -> scalar; default `research.models.softmax_cross_entropy`.
    per_layer_grads: also record each layer's gradient norm at every step.
    augment: optional jax function augment(key, images) -> images applied to each batch.
    probe: optional jax function of the variables, evaluated at each evaluation point.
    variables: initial variables; default `model.init(PRNGKey(seed), x[:1], train=False)`.
    stat_batch_size: examples normalized together (per-device batch); must divide batch_size.

  Returns:
    A `FitResult`.
  """
  x_train, y_train = train
  x_val, y_val = val
  if eval_every is None:
    eval_every = max(1, steps // 20)
  if steps % eval_every:
    raise ValueError(f"steps={steps} is not a multiple of eval_every={eval_every}; "
                     f"choose eval_every among the divisors of {steps}")
  groups = 1
  if stat_batch_size is not None:
    if batch_size % stat_batch_size:
      raise ValueError(f"stat_batch_size={stat_batch_size} does not divide batch_size="
                       f"{batch_size}; use a divisor of {batch_size}")
    groups = batch_size // stat_batch_size
  loss_fn = _default_loss if loss_fn is None else loss_fn

  key = jax.random.PRNGKey(seed)
  init_key, key = jax.random.split(key)
  if variables is None:
    variables = model.init(init_key, jnp.asarray(x_train[:1]), train=False)
  params = variables["params"]
  state = {k: v for k, v in variables.items() if k != "params"}
  opt_state = tx.init(params)
  names = layer_names(params)

  xs, ys = jnp.asarray(x_train), jnp.asarray(y_train)
  n_train = len(x_train)

  def forward(params, state, x, y, rng):
    out, new_state = model.apply({"params": params, **state}, x, train=True,
                                 rngs={"dropout": rng}, mutable=list(state.keys()))
    return loss_fn(out, y), new_state

  def grouped_loss(params, state, x, y, rng):
    if groups == 1:
      return forward(params, state, x, y, rng)
    xg = x.reshape(groups, -1, *x.shape[1:])
    yg = y.reshape(groups, -1)
    rngs = jax.random.split(rng, groups)
    losses, states = jax.vmap(forward, in_axes=(None, None, 0, 0, 0))(params, state, xg, yg, rngs)
    return losses.mean(), jax.tree.map(lambda s: s.mean(0), states)

  def train_step(carry, step_key):
    params, state, opt_state = carry
    batch_key, drop_key, aug_key = jax.random.split(step_key, 3)
    idx = jax.random.randint(batch_key, (batch_size,), 0, n_train)
    x, y = xs[idx], ys[idx]
    if augment is not None:
      x = augment(aug_key, x)
    (loss, new_state), grads = jax.value_and_grad(grouped_loss, has_aux=True)(
        params, state, x, y, drop_key)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    record = {"loss": loss, "grad_norm": optax.tree.norm(grads),
              "update_norm": optax.tree.norm(updates)}
    if per_layer_grads:
      record["layer"] = layer_grad_norms(grads, names)
    return (params, new_state, opt_state), record

  @jax.jit
  def train_chunk(carry, chunk_key):
    return jax.lax.scan(train_step, carry, jax.random.split(chunk_key, eval_every))

  def make_eval(x, y):
    xc, mask = _chunks(np.asarray(x), eval_batch_size)
    yc, _ = _chunks(np.asarray(y), eval_batch_size)
    xc, yc, mask = jnp.asarray(xc), jnp.asarray(yc), jnp.asarray(mask)
    total = mask.sum()

    def one(args, params, state):
      xb, yb, mb = args
      logits = model.apply({"params": params, **state}, xb, train=False)
      per_example = jax.vmap(loss_fn)(logits[:, None], yb[:, None])
      return (per_example * mb).sum(), (_correct(logits, yb) * mb).sum()

    def evaluate(params, state):
      loss, correct = jax.lax.map(lambda a: one(a, params, state), (xc, yc, mask))
      return loss.sum() / total, correct.sum() / total
    return evaluate

  eval_train = make_eval(x_train[:eval_size], y_train[:eval_size])
  eval_val = make_eval(x_val, y_val)

  @jax.jit
  def evaluate(params, state):
    out = (*eval_train(params, state), *eval_val(params, state))
    return out, (None if probe is None else probe({"params": params, **state}))

  evals, probes, records = [], [], []
  carry = (params, state, opt_state)
  for chunk in range(steps // eval_every + 1):
    metrics, probed = evaluate(carry[0], carry[1])
    evals.append(metrics)
    probes.append(probed)
    if chunk == steps // eval_every:
      break
    key, chunk_key = jax.random.split(key)
    carry, record = train_chunk(carry, chunk_key)
    records.append(record)

  evals = np.asarray(jax.device_get(evals), np.float64)
  records = jax.device_get(records)
  cat = functools.partial(np.concatenate, axis=0)
  steps_done = np.arange(len(evals)) * eval_every
  return FitResult(
      eval_steps=steps_done,
      train_loss=evals[:, 0], train_accuracy=evals[:, 1],
      val_loss=evals[:, 2], val_accuracy=evals[:, 3],
      step_loss=cat([r["loss"] for r in records]),
      grad_norm=cat([r["grad_norm"] for r in records]),
      update_norm=cat([r["update_norm"] for r in records]),
      layer_names=names,
      layer_grad_norms=cat([r["layer"] for r in records]) if per_layer_grads else None,
      probes=None if probe is None else jax.tree.map(lambda *a: np.stack(a), *probes),
      variables={"params": carry[0], **carry[1]},
  )
