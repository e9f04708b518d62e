"""`train_and_evaluate(config, workdir)`: the loop tying research.models, .optim and .data.

Reads top to bottom: create_model, initial_state, early stopping, then the loop: the input
(`inputs`: device memory or the host pipeline), the dispatches of many steps (`engine`), and
at dispatch boundaries log, evaluate, early stop / reduce on plateau, checkpoint, resume.
"""

import hashlib
import logging
import math
import os
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from research import config as config_lib
from research import data as data_lib
from research import models, signals
from research.train import checkpoint as ckpt
from research.train import driver, engine, finetune, inputs, parallel, steps, validate
from research.train import metrics as metrics_lib
from research.train import optimizer as optimizer_lib
from research.train import state as state_lib
from research.train import workdir as workdir_lib
from research.train.errors import DivergenceError, NonFiniteLossError


def _log(message: str) -> None:
  logging.info(message)
  if jax.process_index() == 0:
    print(message, flush=True)


def create_model(config: ml_collections.ConfigDict, num_classes: int):
  """The model of `config.model` ({'name', **kwargs}), its BatchNorm synced over 'batch'."""
  kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
  model = models.create(config.model.name, num_classes=num_classes, **kwargs)
  return models.with_batch_axis(model, parallel.AXIS)


def abstract_state(config, model, info, tx_base, plateau):
  """The initial TrainState's shapes and dtypes, traced only (nothing is compiled or run)."""
  dummy = jnp.zeros((1, *info.image_shape), jnp.float32)
  key = jax.random.PRNGKey(0)
  variables = jax.eval_shape(
    lambda r: model.init({"params": r, "dropout": r}, dummy, train=False), key
  )
  tx, _ = finetune.apply_freeze(tx_base, variables["params"], config.freeze)
  return jax.eval_shape(
    lambda v: state_lib.create_train_state(v, tx, plateau, key), dict(variables)
  )


def initial_state(config, model, info, tx_base, plateau, init_from: str | None):
  """Initial TrainState (host arrays) with init_from and freeze applied; returns (state, tx)."""
  init_rng, state_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  variables = state_lib.init_variables(model, init_rng, info.image_shape)
  variables = jax.tree.map(np.asarray, dict(variables))
  if init_from:
    loaded = ckpt.load_variables(init_from)
    variables, report = finetune.merge_variables(
      variables, loaded, config.head_pattern or models.head_pattern(model), config.init_layers
    )
    _log(report.summary())
  tx, frozen = finetune.apply_freeze(tx_base, variables["params"], config.freeze)
  if frozen:
    _log(f"freeze={config.freeze!r}: {len(frozen)} arrays kept fixed: {frozen}")
  return state_lib.create_train_state(variables, tx, plateau, state_rng), tx


def improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
  """Whether `value` beats `best` by more than `min_delta` (mode 'max' or 'min')."""
  if best is None:
    return True
  return value > best + min_delta if mode == "max" else value < best - min_delta


def update_early_stopping(loop: dict, value: float, step: int, es) -> None:
  """Records an evaluation in `loop` (best, best_step, bad_evals, stopped_early)."""
  if improved(value, loop["best"], es.mode, es.min_delta):
    loop.update(best=value, best_step=step, bad_evals=0)
    return
  loop["bad_evals"] += 1
  if es.patience and loop["bad_evals"] >= es.patience:
    loop["stopped_early"] = True
    _log(
      f"early stopping at step {step}: validation {es.metric} has not improved for "
      f"{es.patience} evaluations (best {loop['best']:.4f} at step {loop['best_step']})"
    )


def params_digest(params) -> str:
  """sha256 of the parameters' bytes (leaves in path order): equal digests, equal bits."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(params):
    digest.update(np.ascontiguousarray(leaf).tobytes())
  return digest.hexdigest()


def _monitor_value(metrics: dict, metric: str) -> float:
  """Reduce-on-plateau minimizes: loss as is, accuracy-like metrics negated."""
  return metrics[metric] if metric == "loss" else -metrics[metric]


def dispatch_interval(config: ml_collections.ConfigDict) -> int:
  """Steps per dispatch: steps_per_dispatch, reduced so that dispatches end at every log,
  evaluation and checkpoint step (the gcd of the four)."""
  requested = config.steps_per_dispatch
  return math.gcd(
    requested, config.log_every_steps, config.eval_every_steps, config.checkpoint_every_steps
  )


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str, *, test: bool = True
) -> dict:
  """Trains `config` in `workdir` (resuming from its checkpoints) and returns final metrics.

  Trains on the training split, evaluates the validation set every `eval_every_steps` (early
  stopping, reduce on plateau and the best checkpoint watch it) and, with `test`, evaluates the
  test split once at the end, on the final parameters and on the best-validation checkpoint.
  A finished run called again (with `test=True` after `test=False`: a sweep's chosen trial)
  trains no further and only evaluates the test split.

  Returns a dict with 'step', 'train_loss', 'train_accuracy', 'validation_<metric>' for each
  evaluation metric (the last evaluation), 'best_step' and 'best_validation_<es metric>' (the
  best evaluation; None without a validation set), with `test`: 'test_<metric>' (the
  best-validation checkpoint: the model the run selects; the final parameters without a
  validation set), 'test_step' (its step) and 'final_test_<metric>' (the final parameters);
  'num_examples' ({'train', 'validation', 'test'}), 'stopped_early', 'steps_per_second',
  'nonfinite_steps', 'input' ('memory' or 'host'), 'train_records' (this process's share of the
  training split, [start, stop)) and 'params_sha256' (a digest of the final parameters).

  Raises (see `research.train.errors` for the exit codes `research.main` maps them to):
    research.errors.UserError (ConfigError, DatasetNotFoundError, MalformedDatasetError,
      WorkdirError, WorkdirBusyError, CheckpointMismatchError, NothingToFineTuneError): before
      anything is written or compiled. DivergenceError: the loss diverged. DiskFullError (a
      UserError too). Interrupted: SIGTERM / SIGINT, after a checkpoint at the step it stopped.
      Anything else is a bug.
  """
  config = config_lib.complete(config)  # what the config leaves out takes the schema's default
  workdir_lib.check_path(workdir)
  workdir = os.path.abspath(os.path.expanduser(workdir))
  if jax.process_index() == 0:
    workdir_lib.check_free(workdir)  # a live run here is the first thing to say
  # 1. Checks that need no compilation and write nothing.
  validate.check_config(config)
  setup = plan_inputs(config)
  model = create_model(config, setup.info.num_classes)
  validate.check_workdir(config, workdir)
  resuming = ckpt.has_checkpoints(workdir)
  init_from = None if resuming else config.init_from  # only a fresh start loads init_from
  if init_from:
    ckpt.find_state_dir(init_from)  # raises now if there is nothing to load
  plateau = optimizer_lib.build_plateau(config.optimizer)
  tx_base = optimizer_lib.build_optimizer(config.optimizer)
  if resuming:  # a checkpoint of another model or optimizer is refused, not taken for damage
    ckpt.check_compatible(
      _manager(config, workdir), abstract_state(config, model, setup.info, tx_base, plateau)
    )
  # 2. One writer per workdir from here on (process 0 writes all but checkpoint shards).
  lock = workdir_lib.Lock(workdir).acquire() if jax.process_index() == 0 else None
  try:
    with signals.Interrupts() as interrupts:
      return _train(
        config, workdir, setup, model, tx_base, plateau, init_from, lock, interrupts, test
      )
  finally:
    if lock is not None:
      lock.release()


class Plans(NamedTuple):
  """Where each split of the run is served (`inputs.plan_split`); validation None without one."""

  train: inputs.SplitPlan
  validation: inputs.SplitPlan | None
  test: inputs.SplitPlan


class Setup(NamedTuple):
  """What `plan_inputs` decides before anything is compiled."""

  info: data_lib.DatasetInfo
  mesh: jax.sharding.Mesh
  splits: data_lib.RunSplits
  plans: Plans


def plan_inputs(config) -> Setup:
  """The run's dataset, mesh, splits and input plans, after the checks that need no
  compilation: the metric fits the task, the validation set exists if something watches it,
  both batch sizes divide across the devices and processes, every split fits where
  `dataset.in_memory` puts it."""
  info = data_lib.get_info(config.dataset.name, config.dataset.data_dir)
  validate.check_metric(config, info.task, info.num_classes)
  splits = inputs.run_splits(config)
  validate.check_validation(config, splits.validation is not None)
  mesh = parallel.create_mesh(config.num_devices or None)
  data_lib.check_batch_size(config.batch_size, mesh.size, jax.process_count())
  eval_batch_size = config.eval_batch_size or config.batch_size
  data_lib.check_batch_size(eval_batch_size, mesh.size, jax.process_count())

  def plan(split, train):
    size = config.batch_size if train else eval_batch_size
    return inputs.plan_split(config, info, split, train=train, batch_size=size)

  plans = Plans(
    plan(splits.train, True),
    None if splits.validation is None else plan(splits.validation, False),
    plan(splits.test, False),
  )
  return Setup(info, mesh, splits, plans)


def _manager(config, workdir: str):
  es = config.early_stopping
  return ckpt.create_manager(
    os.path.join(workdir, "checkpoints"),
    keep=config.keep_checkpoints,
    best_metric=es.metric,
    best_mode=es.mode,
  )


class _Recorder:
  """What `research.main` records across dispatches, as the driver's hooks: the training
  metrics' sums (logged, and checked for divergence), evaluations (early stopping, reduce on
  plateau, the best step), the loop state a checkpoint keeps, metrics.jsonl and TensorBoard."""

  def __init__(
    self, config, loop, at, evaluate_sums, plateau_update, train_input, writer, progress
  ):
    self.config, self.loop, self.at = config, loop, at
    self.evaluate_sums, self.plateau_update = evaluate_sums, plateau_update
    self.train_input, self.writer, self.progress = train_input, writer, progress
    self.schedule = optimizer_lib.build_schedule(
      config.optimizer.learning_rate, config.optimizer.schedule
    )
    self.skip_nonfinite = config.optimizer.skip_nonfinite
    self.max_skipped = config.optimizer.max_skipped_steps if self.skip_nonfinite else 0
    self.max_loss_factor = config.optimizer.max_loss_factor
    self.train_sums, self.train_n, self.nonfinite_steps = {}, 0, 0
    self.last_train = {}

  def hooks(self) -> driver.Hooks:
    validating = self.evaluate_sums is not None
    return driver.Hooks(
      after_dispatch=self.after_dispatch,
      log=self.log,
      evaluate=self.evaluate if validating else None,
      new_best=self.new_best if validating else None,
      checkpoint=self.checkpoint,
      progress=self.update_progress,
      close=self.close,
    )

  def after_dispatch(self, out, step) -> None:
    """Adds a dispatch's metric sums (read once); raises when the loss diverged."""
    if self.loop["first_loss"] is None:  # a fresh run's first dispatch: the loss at the start
      self.loop["first_loss"] = float(out["first_loss"])
    if int(out["longest_run"]) > self.max_skipped:
      raise NonFiniteLossError(self._nonfinite_message(int(out["first_nonfinite"]) + 1, step))
    self.nonfinite_steps += int(out["nonfinite"])
    self.train_n += int(out["steps"])
    for k, v in out["sums"].items():
      self.train_sums[k] = self.train_sums.get(k, 0.0) + float(v)

  def _nonfinite_message(self, first, step) -> str:
    if not self.skip_nonfinite:
      return (
        f"training loss is not finite at step {first}; stopping ({self.at.intact()}). "
        "Lower optimizer.learning_rate, set optimizer.clip_norm, or set "
        "optimizer.skip_nonfinite=True to skip such steps"
      )
    return (
      f"training loss was not finite for more than optimizer.max_skipped_steps="
      f"{self.max_skipped} steps in a row (up to step {step}); stopping ({self.at.intact()}). "
      "Lower optimizer.learning_rate or set optimizer.clip_norm"
    )

  def check_loss_scale(self, step, value, what="training") -> None:
    """Divergence: a loss far above the loss at the start (of the first step of the run)."""
    first = self.loop["first_loss"]
    if first is None or not math.isfinite(first):
      return
    limit = self.max_loss_factor * max(first, 1.0)
    if value > limit:
      raise DivergenceError(
        f"{what} loss {value:.4g} at step {step} exceeds optimizer.max_loss_factor="
        f"{self.max_loss_factor:g} x max(the first step's loss {first:.4g}, 1); the "
        f"run diverged ({self.at.intact()}). Lower optimizer.learning_rate"
      )

  def log(self, state, step) -> None:
    if not self.train_n:
      return
    self.last_train = {k: v / self.train_n for k, v in self.train_sums.items()}
    self.check_loss_scale(step, self.last_train["loss"])
    lr = float(self.schedule(step) if callable(self.schedule) else self.schedule)
    lr *= float(parallel.fetch(state_lib.plateau_scale(state.plateau)))
    extra = {"nonfinite_steps": self.nonfinite_steps} if self.skip_nonfinite else {}
    self.writer.write(
      step,
      "train",
      {
        **self.last_train,
        "learning_rate": lr,
        "steps_per_second": self.progress.steps_per_second(step),
        **extra,
      },
    )
    self.train_sums, self.train_n = {}, 0

  def evaluate(self, state, step):
    """Evaluates on the validation set, writes, updates the best step, early stopping and
    reduce on plateau; -> (state, stop)."""
    metrics = steps.summarize(self.evaluate_sums(state))
    if not math.isfinite(metrics["loss"]):
      raise DivergenceError(
        f"validation loss is {metrics['loss']} at step {step}; stopping ({self.at.intact()})"
      )
    self.check_loss_scale(step, metrics["loss"], "validation")
    self.writer.write(step, "validation", metrics)
    self.loop["validation"] = metrics
    update_early_stopping(
      self.loop, metrics[self.config.early_stopping.metric], step, self.config.early_stopping
    )
    if self.plateau_update is not None:
      monitored = _monitor_value(metrics, self.config.optimizer.reduce_on_plateau.metric)
      state = state.replace(plateau=self.plateau_update(state.plateau, jnp.float32(monitored)))
    return state, self.loop["stopped_early"]

  def new_best(self, step) -> bool:
    """Whether the evaluation at `step` is the best so far (its step is saved at once)."""
    return self.loop["best_step"] == step

  def checkpoint(self):
    """(loop state, monitored): only a new best is ranked, so "keep the best" keeps exactly
    the best validation step (`loop['best_step']`), whatever ties come later."""
    metric = self.config.early_stopping.metric
    best = self.loop["best_step"] is not None and self.loop["best_step"] == self.at.step
    monitored = {metric: self.loop["best"]} if best else None
    return {**self.loop, "data": self.train_input.get_state()}, monitored

  def update_progress(self, done) -> None:
    loss = {"loss": self.last_train["loss"]} if "loss" in self.last_train else {}
    self.progress.update(done, **loss)

  def close(self) -> None:
    try:
      self.writer.close()  # on a full disk its flush fails as well
    finally:
      self.progress.close()


def _train(
  config, workdir, setup, model, tx_base, plateau, init_from, lock, interrupts, evaluate_test
) -> dict:
  t_start = time.perf_counter()
  info, mesh, splits, plans = setup
  host_state, tx = initial_state(config, model, info, tx_base, plateau, init_from)
  train_input = inputs.TrainInput(config, plans.train, mesh)
  interval = train_input.host_steps(dispatch_interval(config))
  held = "no validation set" if splits.validation is None else splits.validation.describe()
  _log(
    f"{config.model.name}: {models.count_params(host_state.params):,} parameters; "
    f"{config.dataset.name} ({info.task}): {splits.train.describe()}, {held}, "
    f"{splits.test.describe()}; {mesh.size} devices, {jax.process_count()} "
    f"process(es); global batch {config.batch_size}; input from "
    f"{'device memory' if plans.train.in_memory else 'the host pipeline'}, "
    f"{interval} steps per dispatch"
  )
  state = parallel.replicate(host_state, mesh)
  if jax.process_index() == 0:
    validate.save_config(config, workdir)
  dispatch = _train_dispatch(config, mesh, plans.train, model, tx, train_input)
  eval_step = steps.make_eval_step(
    model, num_classes=info.num_classes, task=info.task, loss=config.loss
  )
  validation_sums = (
    None
    if plans.validation is None
    else inputs.EvalInput(config, plans.validation, mesh, eval_step)
  )
  plateau_update = (
    None
    if plateau is None
    else jax.jit(lambda s, v: plateau.update(jnp.zeros((), jnp.float32), s, value=v)[1])
  )
  manager = _manager(config, workdir)
  saver = ckpt.Saver(manager)
  loop = {
    "best": None,
    "best_step": None,
    "bad_evals": 0,
    "stopped_early": False,
    "validation": None,
    "first_loss": None,
  }
  restored = ckpt.restore_latest(manager, state, warn=_log)
  if restored is None and config.init_from and not init_from:  # every checkpoint was unreadable
    host_state, _ = initial_state(config, model, info, tx, plateau, config.init_from)
    state = parallel.replicate(host_state, mesh)
  at = driver.Position()
  if restored is not None:
    state, saved_loop, at.step = restored
    # All processes advance in lockstep, so process 0's position holds for every process.
    train_input.set_state(saved_loop.pop("data"))
    loop.update(saved_loop)
    at.last_saved, at.stopped_early = at.step, loop["stopped_early"]
    at.evaluated_at = at.step if loop["validation"] is not None else None
    _log(f"resumed from {workdir}/checkpoints/{at.step}")
  writer = metrics_lib.MetricWriter(workdir, tensorboard=config.tensorboard, start_step=at.step)
  progress = metrics_lib.Progress(config.num_train_steps, at.step, enabled=config.progress_bar)
  recorder = _Recorder(
    config, loop, at, validation_sums, plateau_update, train_input, writer, progress
  )
  schedule = driver.Schedule(
    total=config.num_train_steps,
    interval=interval,
    log_every=config.log_every_steps,
    eval_every=config.eval_every_steps if validation_sums is not None else 0,
    checkpoint_every=config.checkpoint_every_steps,
  )
  checkpoints = driver.Checkpoints(saver, lock, workdir)
  state = driver.run(
    state,
    dispatch,
    lambda num_steps: train_input.feed(num_steps, interval),
    schedule,
    recorder.hooks(),
    at,
    checkpoints=checkpoints,
    interrupts=interrupts,
  )
  test = None
  if evaluate_test:
    test = _test(config, workdir, mesh, plans.test, eval_step, state, loop["best_step"], at.step)
  return _result(config, splits, at, loop, recorder, progress, train_input, state, test, t_start)


class TestMetrics(NamedTuple):
  """The test split's metrics, computed once at the end of a run."""

  final: dict  # of the final parameters
  best: dict  # of the best-validation checkpoint (the final parameters without validation)
  best_step: int  # the step of the parameters `best` evaluates


def _test(config, workdir, mesh, plan, eval_step, state, best_step, step) -> TestMetrics:
  """Evaluates the test split on the final state and on the best-validation checkpoint, and
  writes both to metrics.jsonl ("split": "test", "params": "final" / "best") and TensorBoard
  (runs test and test_best)."""
  evaluate = inputs.EvalInput(config, plan, mesh, eval_step)
  final = steps.summarize(evaluate(state))
  if best_step is None or best_step == step:
    best, best_step = final, step
  else:
    manager = _manager(config, workdir)
    try:
      best = steps.summarize(evaluate(ckpt.restore_state(manager, best_step, state)))
    finally:
      manager.close()
  writer = metrics_lib.MetricWriter(workdir, tensorboard=config.tensorboard, start_step=step)
  try:
    writer.write(step, "test", final, params="final")
    writer.write(best_step, "test", best, board="test_best", params="best")
  finally:
    writer.close()
  return TestMetrics(final, best, best_step)


def _train_dispatch(config, mesh, train_plan, model, tx, train_input):
  """The compiled train dispatch of `config` (compiled on its first call)."""
  skip_nonfinite = config.optimizer.skip_nonfinite
  max_skipped = config.optimizer.max_skipped_steps if skip_nonfinite else 0
  # The state is donated to each dispatch; saves hand the Saver a device-side copy.
  return engine.make_train_dispatch(
    steps.make_train_step(model, tx, loss=config.loss),
    mesh,
    global_batch_size=config.batch_size,
    feed=train_input.feed_kind,
    num_examples=train_plan.rows,
    augment=inputs.preset(config),
    stats=inputs.device_stats(config) if train_plan.in_memory else None,
    max_nonfinite_run=max_skipped,
  )


def _result(config, splits, at, loop, recorder, progress, train_input, state, test, t_start):
  es = config.early_stopping
  sps = progress.steps_per_second(at.step)
  validation = loop["validation"] or {}
  result = {
    "step": at.step,
    **{f"train_{k}": v for k, v in recorder.last_train.items()},
    **{f"validation_{k}": v for k, v in validation.items()},
    "best_step": loop["best_step"],
    f"best_validation_{es.metric}": loop["best"],
    **({} if test is None else _test_keys(test)),
    "num_examples": splits.counts(),
    "stopped_early": loop["stopped_early"],
    "steps_per_second": sps,
    "nonfinite_steps": recorder.nonfinite_steps,
    "input": train_input.feed_kind,
    "train_records": [train_input.plan.start, train_input.plan.stop],
    "params_sha256": params_digest(parallel.fetch(state.params)),
  }
  _log(
    f"done: step {at.step}/{config.num_train_steps}; {summary(result, es.metric)}; "
    f"{sps:.1f} steps/s; {time.perf_counter() - t_start:.1f} s"
  )
  return result


def _test_keys(test: TestMetrics) -> dict:
  return {
    **{f"test_{k}": v for k, v in test.best.items()},
    "test_step": test.best_step,
    **{f"final_test_{k}": v for k, v in test.final.items()},
  }


def summary(result: dict, metric: str) -> str:
  """What a run's result says, each number named by its split: 'test accuracy 0.9694 (the
  best-validation checkpoint, step 400; validation 0.9756), final step 600: test 0.9722,
  validation 0.9721; 1,150 / 287 / 360 train / validation / test examples'."""
  counts = result["num_examples"]
  sizes = "{train:,} / {validation:,} / {test:,} train / validation / test examples".format(
    **counts
  )
  test = result.get(f"test_{metric}")
  final_test = result.get(f"final_test_{metric}")
  if test is None:
    if result["best_step"] is None:
      return f"test not evaluated, no validation set; {sizes}"
    best = result[f"best_validation_{metric}"]
    return (
      f"validation {metric} {best:.4f} at step {result['best_step']}; test not evaluated; {sizes}"
    )
  if result["best_step"] is None:
    return (
      f"test {metric} {test:.4f} (final step {result['test_step']}, no validation set); {sizes}"
    )
  best = result[f"best_validation_{metric}"]
  last = result.get(f"validation_{metric}")
  return (
    f"test {metric} {test:.4f} (the best-validation checkpoint, step {result['test_step']}; "
    f"validation {best:.4f}); final step {result['step']}: test {final_test:.4f}, validation "
    f"{last:.4f}; {sizes}"
  )
