"""What the part-2 figures record while they train through `research.train`'s engine.

    data = load_data("digits")      # Data(name, train, validation, test)
    result = fit(model, tx, data.train, data.validation, test=data.test,
                 batch_size=64, steps=2000, seed=0, eval_every=100)

Splits, as the lecture prescribes (004: each setting is evaluated on the validation set; 000:
reduce on plateau watches validation performance) and as `research.main` runs them
(`research.data.run_splits`): a figure trains on `train`, draws its curves and makes its choices
(an early-stopping step, a learning rate, a variant) on `validation`, a fixed part of the
dataset's training split held out by `research.data.holdout` (never trained on), and reports
`test` once, for the model it chose. `fit` keeps the parameters of the best validation
evaluation (`select`, the early-stopping choice) and, given `test`, evaluates the test arrays
once at the end on them (`FitResult.test`) and on the final parameters (`final_test`).

Training is `research.train`'s: the train step of `steps.make_train_step` (the one
`research.main` runs), run by `research.train.driver` (the loop `research.main` and the sweeps
run), `eval_every` steps per dispatch of `engine.make_train_dispatch` with the arrays in device
memory (a new permutation of the training arrays each epoch), single device.
The compiled programs are cached per (model, optimizer, shapes), so runs that differ only in
their seed or data compile nothing. What is figure-specific lives here: per step the loss, the
global gradient norm, the global update norm and, when asked, the gradient norm of every layer
(a module of `params`, as `research.models.diagnostics.grouped_norms` groups them); at every
evaluation point loss and accuracy on the training arrays (first `eval_size` examples) and on
the validation arrays (`steps.make_eval_step`), and optionally a user `probe(variables)`.

`model` is any Flax linen module following the `research.models` call convention
(`init(rng, x, train=False)`, `apply(variables, x, train=True, rngs={'dropout': k},
mutable=['batch_stats'])`), `tx` any optax transformation (normally from `research.optim`).
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

from research.data import RunSplits, Split, load_arrays, run_splits
from research.models import diagnostics
from research.train import driver, engine, parallel
from research.train import state as state_lib
from research.train import steps as steps_lib

Array = jax.Array


class FitResult(NamedTuple):
  """Curves of one training run (NumPy arrays) and its final variables."""

  eval_steps: np.ndarray  # (E,) steps at which the model was evaluated (0 = init)
  train_loss: np.ndarray  # (E,) loss on the training arrays (first eval_size)
  train_accuracy: np.ndarray  # (E,)
  val_loss: np.ndarray  # (E,) loss on the validation arrays
  val_accuracy: np.ndarray  # (E,)
  best_index: int  # the evaluation chosen on validation (`select`); eval_steps[best_index]
  test: dict | None  # test metrics of the parameters at best_index (None without `test`)
  final_test: dict | None  # test metrics of the final parameters (None without `test`)
  step_loss: np.ndarray  # (steps,) mini-batch loss at each step
  grad_norm: np.ndarray  # (steps,) global gradient norm ||g||_2 at each step
  update_norm: np.ndarray  # (steps,) global norm of the optimizer's update
  layer_names: list[str]  # module paths of the parameters, in network order
  layer_grad_norms: np.ndarray | None  # (steps, L) per-layer gradient norms, or None
  probes: Any  # pytree of (E, ...) arrays from `probe`, or None
  variables: Any  # final variables (params and batch_stats)
  val_sums: Any  # validation sums of each evaluation, (E, ...) arrays


Arrays = tuple[np.ndarray, np.ndarray]  # (images (N, H, W, C) float32, labels)


class Data(NamedTuple):
  """A dataset's train / validation / test arrays, as `research.data.run_splits` splits it."""

  name: str  # the dataset that ran
  train: Arrays  # the training split less the validation examples: what is trained on
  validation: Arrays  # held out of the training split (`research.data.holdout`), never trained on
  test: Arrays  # the dataset's test split, reported once


@functools.lru_cache(maxsize=8)
def _load(name: str, split: str) -> Arrays:
  return load_arrays(name, split)


def _arrays(name: str, split: Split) -> Arrays:
  """The records of `split` (a `research.data.Split`) from the cached stored split."""
  images, labels = _load(name, split.stored)
  rows = split.rows()
  return images[rows], labels[rows]


def resolve_dataset(prefer: str, validation: int | float | None = None) -> tuple[str, RunSplits]:
  """(the dataset that runs, its `research.data.run_splits`) without loading any images:
  `prefer`, or "digits" when `prefer` is "fashion_mnist_idx" and its files are not installed."""
  try:
    return prefer, run_splits(prefer, validation)
  except FileNotFoundError:
    if prefer != "fashion_mnist_idx":
      raise
    return "digits", run_splits("digits", validation)


def load_data(
  prefer: str = "digits",
  *,
  max_train: int | None = None,
  max_val: int | None = None,
  max_test: int | None = None,
  seed: int = 0,
  validation: int | float | None = None,
) -> Data:
  """Real train, validation and test arrays from `research.data`, cached per process.

  The splits are `research.data.run_splits(name, validation)`'s, those `research.main` trains,
  chooses and reports on: the validation set is the dataset's own where it has one, else a
  fixed part of the training split (`validation` examples, a count or fraction; None: the
  dataset's default, e.g. 20% of the digits, 5,000 Fashion-MNIST images), held out by the
  fixed permutation of `research.data.holdout` and absent from `train`.

  `prefer="fashion_mnist_idx"` falls back to "digits" when the Fashion-MNIST files are not
  installed (Debian package dataset-fashion-mnist); any other missing dataset (a TFDS name that
  is not prepared, a wrong `idx:DIR`) raises `research.data.DatasetNotFoundError` with the way
  to prepare it. Subsets (`max_train`, `max_val`, `max_test`) are drawn at random with `seed`,
  without replacement, each from its own split.

  Returns:
    `Data(name that ran, train, validation, test)`, images (N, H, W, C) float32.
  """
  name, splits = resolve_dataset(prefer, validation)
  if splits.validation is None:
    raise ValueError(
      f"validation={validation!r} holds out nothing; the figures need a validation set"
    )
  rng = np.random.default_rng(seed)

  def subset(arrays, limit):
    if limit is None or limit >= len(arrays[0]):
      return arrays
    idx = np.sort(rng.choice(len(arrays[0]), limit, replace=False))
    return arrays[0][idx], arrays[1][idx]

  return Data(
    name,
    subset(_arrays(name, splits.train), max_train),
    subset(_arrays(name, splits.validation), max_val),
    subset(_arrays(name, splits.test), max_test),
  )


def standardize(train: Arrays, *others: Arrays) -> tuple[Arrays, ...]:
  """(train, *others) with images (N, H, W, C) mapped to (x - mean) / std, per channel, with
  the mean and std of the training images only; labels unchanged."""
  mean, std = train[0].mean(axis=(0, 1, 2)), train[0].std(axis=(0, 1, 2))
  return tuple(((x - mean) / std, y) for x, y in (train, *others))


def dense_layers(result: FitResult) -> list[int]:
  """Columns of `result.layer_grad_norms` that belong to the hidden dense layers 'dense_<i>'
  (in network order; the head and any normalization layers left out)."""
  return [i for i, n in enumerate(result.layer_names) if n.startswith("dense_")]


def _layer_order(name: str) -> tuple:
  """Sorts 'dense_10' after 'dense_2' and 'head' last: by the first module's trailing integer."""
  first = name.split("/")[0]
  match = re.search(r"(\d+)$", first)
  return (int(match.group(1)) if match else 1 << 30, name)


def layer_names(params: dict) -> list[str]:
  """Module paths of `params` (as `research.models.diagnostics.grouped_norms` names them),
  in network order for numbered layers ('dense_0', ..., 'dense_9', then 'head')."""
  names = jax.eval_shape(diagnostics.grouped_norms, params).keys()  # names only: no compiling
  return sorted(names, key=_layer_order)


def layer_grad_norms(grads: dict, names: list[str]) -> Array:
  """Per-layer norms ||dL/dtheta_l||_2 (kernel and bias together) in the order of `names`. (L,)."""
  norms = diagnostics.grouped_norms(grads)
  return jnp.stack([norms[n] for n in names])


# the validation metric `fit(select=...)` chooses on, and its sign (lower signed value is better)
_SELECT = {"accuracy": -1.0, "loss": 1.0}


@functools.lru_cache(maxsize=32)
def _programs(
  model,
  tx,
  *,
  batch_size: int,
  num_train: int,
  eval_every: int,
  eval_batch_size: int,
  per_layer_grads: bool,
  augment,
  num_classes: int,
  task: str,
  names: tuple[str, ...],
):
  """The compiled train dispatch and evaluations for one (model, optimizer, shapes) setting.

  Cached, so runs that share them (other seeds, the same network again) compile nothing.
  Returns (mesh, dispatch, evaluator): `evaluator(rows)` is the evaluation pass over a split
  of `rows` examples, one program per size (a pass runs every batch of its program, so each
  split gets its own rather than all padded to the largest).
  """
  mesh = parallel.create_mesh(1)

  def extra_metrics(grads, updates):
    record = {"update_norm": optax.tree.norm(updates)}
    if per_layer_grads:
      record["layer"] = layer_grad_norms(grads, list(names))
    return record

  train_step = steps_lib.make_train_step(model, tx, extra_metrics=extra_metrics)
  dispatch = engine.make_train_dispatch(
    train_step,
    mesh,
    global_batch_size=batch_size,
    feed="memory",
    num_examples=num_train,
    augment=augment or "none",
    max_nonfinite_run=None,
    record_steps=eval_every,
  )
  eval_step = steps_lib.make_eval_step(model, num_classes=num_classes, task=task)

  @functools.cache
  def evaluator(rows: int):
    return engine.make_eval_dispatch(
      eval_step, mesh, global_batch_size=min(eval_batch_size, rows), num_examples=rows
    )

  return mesh, dispatch, evaluator


def fit(
  model,
  tx: optax.GradientTransformation,
  train: tuple[np.ndarray, np.ndarray],
  val: tuple[np.ndarray, np.ndarray],
  *,
  test: tuple[np.ndarray, np.ndarray] | None = None,
  select: str = "accuracy",
  batch_size: int,
  steps: int,
  seed: int = 0,
  eval_every: int | None = None,
  eval_size: int = 2048,
  eval_batch_size: int = 1024,
  per_layer_grads: bool = False,
  augment: Callable | None = None,
  probe: Callable[[Any], Any] | None = None,
  variables: Any = None,
) -> FitResult:
  """Trains `model` with `tx` on in-memory arrays through `research.train`'s engine.

  Args:
    model: a Flax linen module taking NHWC float32 images and `train=`; returns logits.
    tx: an optax GradientTransformation (the same one at every step).
    train: (images (N, H, W, C) float32, integer labels (N,) or (N, H, W)).
    val: validation arrays of the same kind, evaluated at every evaluation point: held out of
      the training data (`load_data(...).validation`), never trained on.
    test: optional test arrays, evaluated once at the end, on the parameters of the best
      validation evaluation and on the final ones; never used to choose anything.
    select: the validation metric that chooses the best evaluation (early stopping's choice):
      "accuracy" (highest; `research.main`'s default) or "loss" (lowest); ties keep the
      earliest.
    batch_size: examples per step, each epoch a new permutation of the training arrays.
    steps: number of optimizer steps.
    seed: seeds the initialization, the epoch orders, dropout and `augment`.
    eval_every: steps between evaluations (default: about 20 evaluations in all).
    eval_size: training examples used to measure the training loss/accuracy.
    eval_batch_size: batch size of the evaluation passes.
    per_layer_grads: also record each layer's gradient norm at every step.
    augment: optional `research.data.device` augmentation of one example,
      (key, image, label) -> (image, label), applied inside the training steps.
    probe: optional jax function of the variables, evaluated at each evaluation point.
    variables: initial variables; default `model.init(PRNGKey(seed), x[:1], train=False)`.

  Returns:
    A `FitResult`; `val_sums` holds the validation sums of `research.train.steps.make_eval_step`
    at each evaluation (with the (C, C) confusion for segmentation labels).
  """
  x_train, y_train = train
  x_val, y_val = val
  if select not in _SELECT:
    raise ValueError(f"select={select!r}; choose one of {sorted(_SELECT)}")
  if eval_every is None:
    eval_every = max(1, steps // 20)
  if steps % eval_every:
    raise ValueError(
      f"steps={steps} is not a multiple of eval_every={eval_every}; "
      f"choose eval_every among the divisors of {steps}"
    )
  init_key, state_key = jax.random.split(jax.random.PRNGKey(seed))
  if variables is None:
    variables = _init(model, init_key, jnp.asarray(x_train[:1]))
  params = variables["params"]
  names = tuple(layer_names(params))
  num_classes = jax.eval_shape(
    lambda v: model.apply(v, jnp.asarray(x_train[:1]), train=False), variables
  ).shape[-1]
  task = "classification" if np.ndim(y_train) == 1 else "segmentation"
  x_sub, y_sub = x_train[:eval_size], y_train[:eval_size]
  mesh, dispatch, evaluator = _programs(
    model,
    tx,
    batch_size=batch_size,
    num_train=len(x_train),
    eval_every=eval_every,
    eval_batch_size=eval_batch_size,
    per_layer_grads=per_layer_grads,
    augment=augment,
    num_classes=int(num_classes),
    task=task,
    names=names,
  )
  train_split = _on_device(x_train, y_train, mesh, seed)
  split_arrays = {"train": x_sub, "val": x_val}
  eval_splits = {
    "train": _on_device(x_sub, y_sub, mesh, seed),
    "val": _on_device(x_val, y_val, mesh, seed),
  }
  # A copy: the dispatches donate the state, and the caller may still hold `variables`.
  state = parallel.copy(
    parallel.replicate(
      state_lib.create_train_state(
        {"params": params, "batch_stats": variables.get("batch_stats", {})}, tx, None, state_key
      ),
      mesh,
    )
  )
  probe_fn = None if probe is None else jax.jit(probe)
  evals, val_sums, probes, records = [], [], [], []
  sign = _SELECT[select]
  best = {"value": None, "index": 0, "state": None}

  def evaluate(state, step):
    """The evaluation point at `step`: loss and accuracy on both splits, the probe, and the
    best validation evaluation so far (its state kept when there is a test set)."""
    del step
    row = []
    for split_name, split in eval_splits.items():
      sums = parallel.fetch(evaluator(len(split_arrays[split_name]))(state, split))
      metrics = steps_lib.summarize(sums)
      row += [metrics["loss"], metrics["accuracy"]]
      if split_name == "val":
        val_sums.append(sums)
        value = sign * metrics[select]
        if best["value"] is None or value < best["value"]:
          best.update(value=value, index=len(evals))
          if test is not None:  # a copy: the next dispatch donates `state`
            best["state"] = parallel.copy(state)
    evals.append(row)
    if probe_fn is not None:
      probes.append(jax.device_get(probe_fn(_variables(state))))
    return state, False

  hooks = driver.Hooks(
    after_dispatch=lambda out, step: records.append(out["records"]), evaluate=evaluate
  )
  evaluate(state, 0)  # the evaluation at initialization
  state = driver.run(
    state,
    dispatch,
    lambda num_steps: train_split,
    driver.Schedule(total=steps, interval=eval_every, eval_every=eval_every),
    hooks,
    driver.Position(evaluated_at=0),
  )

  test_metrics = final_test = None
  if test is not None:
    test_split = _on_device(*test, mesh, seed)
    evaluate_test = evaluator(len(test[0]))
    final_test = steps_lib.summarize(parallel.fetch(evaluate_test(state, test_split)))
    test_metrics = steps_lib.summarize(parallel.fetch(evaluate_test(best["state"], test_split)))
  evals = np.asarray(evals, np.float64)
  cat = functools.partial(np.concatenate, axis=0)
  return FitResult(
    eval_steps=np.arange(len(evals)) * eval_every,
    train_loss=evals[:, 0],
    train_accuracy=evals[:, 1],
    val_loss=evals[:, 2],
    val_accuracy=evals[:, 3],
    best_index=int(best["index"]),
    test=test_metrics,
    final_test=final_test,
    step_loss=cat([r["loss"] for r in records]),
    grad_norm=cat([r["grad_norm"] for r in records]),
    update_norm=cat([r["update_norm"] for r in records]),
    layer_names=list(names),
    layer_grad_norms=cat([r["layer"] for r in records]) if per_layer_grads else None,
    probes=None if probe is None else jax.tree.map(lambda *a: np.stack(a), *probes),
    variables=jax.device_get(_variables(state)),
    val_sums=jax.tree.map(lambda *a: np.stack(a), *val_sums),
  )


def _on_device(images, labels, mesh, seed, pad_to=None):
  """A split in device memory for the engine (`seed` picks its epoch orders)."""
  return engine.put_split(np.asarray(images), np.asarray(labels), mesh, seed, pad_to=pad_to)


def _variables(state) -> dict:
  out = {"params": state.params}
  if jax.tree.leaves(state.batch_stats):
    out["batch_stats"] = state.batch_stats
  return out


def _init(model, key, x):
  return state_lib.init_variables(model, key, x.shape[1:])


def fit_config(config, model, tx, train, val, **kwargs) -> FitResult:
  """`fit` with a figure config's `batch_size` and `steps`, and its `seed` and `eval_every` when
  it has them; `kwargs` (any of `fit`'s, these included) take precedence."""
  settings = {"batch_size": config.batch_size, "steps": config.steps}
  settings.update({key: config[key] for key in ("seed", "eval_every") if key in config})
  return fit(model, tx, train, val, **{**settings, **kwargs})
