"""`train_and_evaluate(config, workdir)`: the loop tying research.models, .optim and .data.

Reads top to bottom: create_model, initial_state, early stopping, then the loop: the input
(`inputs`: device memory or the host pipeline), the dispatches of many steps (`engine`), and
at dispatch boundaries log, evaluate, early stop / reduce on plateau, checkpoint, resume.
"""

import hashlib
import logging
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from research import data as data_lib
from research import models
from research.train import checkpoint as ckpt
from research.train import engine, errors, finetune, inputs, interrupt, parallel, steps, validate
from research.train import metrics as metrics_lib
from research.train import optimizer as optimizer_lib
from research.train import state as state_lib
from research.train import workdir as workdir_lib
from research.train.errors import DivergenceError, NonFiniteLossError

DEFAULT_STEPS_PER_DISPATCH = 100
DEFAULT_MAX_SKIPPED = 10  # optimizer.max_skipped_steps: skipped steps in a row before stopping
DEFAULT_MAX_LOSS_FACTOR = 100.0  # optimizer.max_loss_factor: x max(the first step's loss, 1)


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
      variables, loaded, config.get("head_pattern") or models.head_pattern(model)
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
  if improved(value, loop["best"], es.mode, es.get("min_delta", 0.0)):
    loop.update(best=value, best_step=step, bad_evals=0)
    return
  loop["bad_evals"] += 1
  if es.patience and loop["bad_evals"] >= es.patience:
    loop["stopped_early"] = True
    _log(
      f"early stopping at step {step}: eval {es.metric} has not improved for "
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
  requested = config.get("steps_per_dispatch", DEFAULT_STEPS_PER_DISPATCH)
  return math.gcd(
    requested, config.log_every_steps, config.eval_every_steps, config.checkpoint_every_steps
  )


def _intact(last_saved: int) -> str:
  if last_saved < 0:
    return "no checkpoint has been saved yet"
  return f"checkpoints up to step {last_saved} are intact"


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config` in `workdir` (resuming from its checkpoints) and returns final metrics.

  Returns a dict with 'step', 'train_loss', 'train_accuracy', 'eval_<metric>' for each
  evaluation metric, 'best_step', 'best_<metric>', 'stopped_early', 'steps_per_second',
  'nonfinite_steps', 'input' ('memory' or 'host'), 'train_records' (this process's share of the
  training split, [start, stop)) and 'params_sha256' (a digest of the final parameters).

  Raises (see `research.train.errors` for the exit codes `research.main` maps them to):
    research.errors.UserError (ConfigError, DatasetNotFoundError, MalformedDatasetError,
      WorkdirError, WorkdirBusyError, CheckpointMismatchError, NothingToFineTuneError): before
      anything is written or compiled. DivergenceError: the loss diverged. DiskFullError (a
      UserError too). Interrupted: SIGTERM / SIGINT, after a checkpoint at the step it stopped.
      Anything else is a bug.
  """
  workdir_lib.check_path(workdir)
  workdir = os.path.abspath(os.path.expanduser(workdir))
  if jax.process_index() == 0:
    workdir_lib.check_free(workdir)  # a live run here is the first thing to say
  # 1. Checks that need no compilation and write nothing.
  validate.check_config(config)
  info, mesh, plans = plan_inputs(config)
  model = create_model(config, info.num_classes)
  validate.check_workdir(config, workdir)
  resuming = ckpt.has_checkpoints(workdir)
  init_from = None if resuming else config.init_from  # only a fresh start loads init_from
  if init_from:
    ckpt.find_state_dir(init_from)  # raises now if there is nothing to load
  plateau = optimizer_lib.build_plateau(config.optimizer)
  tx_base = optimizer_lib.build_optimizer(config.optimizer)
  if resuming:  # a checkpoint of another model or optimizer is refused, not taken for damage
    ckpt.check_compatible(
      _manager(config, workdir), abstract_state(config, model, info, tx_base, plateau)
    )
  # 2. One writer per workdir from here on (process 0 writes all but checkpoint shards).
  lock = workdir_lib.Lock(workdir).acquire() if jax.process_index() == 0 else None
  try:
    with interrupt.Interrupts() as interrupts:
      return _train(
        config, workdir, info, mesh, plans, model, tx_base, plateau, init_from, lock, interrupts
      )
  finally:
    if lock is not None:
      lock.release()


def plan_inputs(config) -> tuple:
  """(info, mesh, (train plan, eval plan)) after the checks that need no compilation: the
  metric fits the task, both batch sizes divide across the devices and processes, both splits
  fit where `dataset.in_memory` puts them."""
  info = data_lib.get_info(config.dataset.name, config.dataset.data_dir)
  validate.check_metric(config, info.task, info.num_classes)
  mesh = parallel.create_mesh(config.get("num_devices", 0) or None)
  data_lib.check_batch_size(config.batch_size, mesh.size, jax.process_count())
  eval_batch_size = config.get("eval_batch_size") or config.batch_size
  data_lib.check_batch_size(eval_batch_size, mesh.size, jax.process_count())
  plans = (
    inputs.plan_split(
      config, info, config.dataset.train_split, train=True, batch_size=config.batch_size
    ),
    inputs.plan_split(
      config, info, config.dataset.eval_split, train=False, batch_size=eval_batch_size
    ),
  )
  return info, mesh, plans


def _committed(manager) -> int:
  """The newest step whose checkpoint is complete on disk, or -1."""
  manager.reload()
  return manager.latest_step() if manager.latest_step() is not None else -1


def _manager(config, workdir: str):
  es = config.early_stopping
  return ckpt.create_manager(
    os.path.join(workdir, "checkpoints"),
    keep=config.get("keep_checkpoints", 2),
    best_metric=es.metric,
    best_mode=es.mode,
  )


def _train(
  config, workdir, info, mesh, plans, model, tx_base, plateau, init_from, lock, interrupts
) -> dict:
  t_start = time.perf_counter()
  train_plan, eval_plan = plans
  schedule = optimizer_lib.build_schedule(
    config.optimizer.learning_rate, config.optimizer.get("schedule")
  )
  host_state, tx = initial_state(config, model, info, tx_base, plateau, init_from)
  train_input = inputs.TrainInput(config, train_plan, mesh)
  interval = train_input.host_steps(dispatch_interval(config))
  _log(
    f"{config.model.name}: {models.count_params(host_state.params):,} parameters; "
    f"{config.dataset.name} ({info.task}); {mesh.size} devices, {jax.process_count()} "
    f"process(es); global batch {config.batch_size}; input from "
    f"{'device memory' if train_plan.in_memory else 'the host pipeline'}, "
    f"{interval} steps per dispatch"
  )
  state = parallel.replicate(host_state, mesh)
  if jax.process_index() == 0:
    validate.save_config(config, workdir)
  loss = config.get("loss", "softmax_cross_entropy")
  skip_nonfinite = config.optimizer.get("skip_nonfinite", False)
  max_skipped = (
    config.optimizer.get("max_skipped_steps", DEFAULT_MAX_SKIPPED) if (skip_nonfinite) else 0
  )
  max_loss_factor = config.optimizer.get("max_loss_factor", DEFAULT_MAX_LOSS_FACTOR)
  # The state is donated to each dispatch; saves hand the Saver a device-side copy (see `save`).
  dispatch = engine.make_train_dispatch(
    steps.make_train_step(model, tx, loss=loss),
    mesh,
    global_batch_size=config.batch_size,
    feed=train_input.feed_kind,
    num_examples=train_plan.rows,
    augment=inputs.preset(config),
    stats=inputs.device_stats(config) if train_plan.in_memory else None,
    max_nonfinite_run=max_skipped,
  )
  evaluate_sums = inputs.EvalInput(
    config,
    eval_plan,
    mesh,
    steps.make_eval_step(model, num_classes=info.num_classes, task=info.task, loss=loss),
  )
  plateau_update = (
    None
    if plateau is None
    else jax.jit(lambda s, v: plateau.update(jnp.zeros((), jnp.float32), s, value=v)[1])
  )

  es = config.early_stopping
  manager = _manager(config, workdir)
  saver = ckpt.Saver(manager)
  loop = {
    "best": None,
    "best_step": None,
    "bad_evals": 0,
    "stopped_early": False,
    "eval": None,
    "first_loss": None,
  }
  restored = ckpt.restore_latest(manager, state, warn=_log)
  if restored is None and config.init_from and not init_from:  # every checkpoint was unreadable
    host_state, _ = initial_state(config, model, info, tx, plateau, config.init_from)
    state = parallel.replicate(host_state, mesh)
  start = 0
  if restored is not None:
    state, saved_loop, start = restored
    # All processes advance in lockstep, so process 0's position holds for every process.
    train_input.set_state(saved_loop.pop("data"))
    loop.update(saved_loop)
    _log(f"resumed from {workdir}/checkpoints/{start}")
  last_saved = start if restored is not None else -1

  def evaluate(state, step):
    metrics = steps.summarize(evaluate_sums(state))
    if not math.isfinite(metrics["loss"]):
      raise DivergenceError(
        f"evaluation loss is {metrics['loss']} at step {step}; stopping ({_intact(last_saved)})"
      )
    check_loss_scale(step, metrics["loss"], "evaluation")
    return metrics

  writer = metrics_lib.MetricWriter(
    workdir, tensorboard=config.get("tensorboard", True), start_step=start
  )
  progress = metrics_lib.Progress(
    config.num_train_steps, start, enabled=config.get("progress_bar", True)
  )
  train_sums, train_n, nonfinite_steps, last_train, run = {}, 0, 0, {}, 0

  def consume(out, step):
    """Adds a dispatch's metric sums (read once); raises when the loss diverged."""
    nonlocal train_sums, train_n, nonfinite_steps, run
    if int(out["longest_run"]) > max_skipped:
      first = int(out["first_nonfinite"]) + 1
      if not skip_nonfinite:
        raise NonFiniteLossError(
          f"training loss is not finite at step {first}; stopping ({_intact(last_saved)}). "
          "Lower optimizer.learning_rate, set optimizer.clip_norm, or set "
          "optimizer.skip_nonfinite=True to skip such steps"
        )
      raise NonFiniteLossError(
        f"training loss was not finite for more than optimizer.max_skipped_steps={max_skipped} "
        f"steps in a row (up to step {step}); stopping ({_intact(last_saved)}). Lower "
        "optimizer.learning_rate or set optimizer.clip_norm"
      )
    nonfinite_steps += int(out["nonfinite"])
    train_n += int(out["steps"])
    run = int(out["run"])
    for k, v in out["sums"].items():
      train_sums[k] = train_sums.get(k, 0.0) + float(v)

  def check_loss_scale(step, value, what="training"):
    """Divergence: a loss far above the loss at the start (of the first step of the run)."""
    if loop["first_loss"] is None or not math.isfinite(loop["first_loss"]):
      return
    limit = max_loss_factor * max(loop["first_loss"], 1.0)
    if value > limit:
      raise DivergenceError(
        f"{what} loss {value:.4g} at step {step} exceeds optimizer.max_loss_factor="
        f"{max_loss_factor:g} x max(the first step's loss {loop['first_loss']:.4g}, 1); the "
        f"run diverged ({_intact(last_saved)}). Lower optimizer.learning_rate"
      )

  def save(step, eval_metrics=None):
    nonlocal last_saved
    if lock is not None:
      lock.check_owner()
    loop_state = {**loop, "data": train_input.get_state()}
    monitored = None if eval_metrics is None else {es.metric: eval_metrics[es.metric]}
    # a copy: the next step donates `state`'s buffers while the Saver may still be reading
    saver.save(step, parallel.copy(state), loop_state, monitored)
    last_saved = step

  stop = (lambda: interrupts.signum is not None) if jax.process_count() == 1 else None
  step = start
  try:
    while step < config.num_train_steps and not loop["stopped_early"]:
      num_steps = min(interval - step % interval, config.num_train_steps - step)
      state, out = dispatch(
        state, train_input.feed(num_steps, interval), num_steps, run=run, stop=stop
      )
      out = parallel.fetch(out)  # the one host read of the dispatch
      done = int(out["done"])
      if loop["first_loss"] is None:  # a fresh run's first dispatch: the loss at the start
        loop["first_loss"] = float(out["first_loss"])
      step += done
      consume(out, step)
      boundary = done == num_steps
      is_eval = boundary and (step % config.eval_every_steps == 0 or step == config.num_train_steps)
      is_log = boundary and (step % config.log_every_steps == 0 or is_eval)
      is_save = boundary and (
        step % config.checkpoint_every_steps == 0 or step == config.num_train_steps
      )
      if is_log and train_n:
        last_train = {k: v / train_n for k, v in train_sums.items()}
        check_loss_scale(step, last_train["loss"])
        lr = float(schedule(step) if callable(schedule) else schedule)
        lr *= float(parallel.fetch(state_lib.plateau_scale(state.plateau)))
        writer.write(
          step,
          "train",
          {
            **last_train,
            "learning_rate": lr,
            "steps_per_second": progress.steps_per_second(step),
            **({"nonfinite_steps": nonfinite_steps} if skip_nonfinite else {}),
          },
        )
        train_sums, train_n = {}, 0
      eval_metrics = None
      if is_eval:
        eval_metrics = evaluate(state, step)
        writer.write(step, "eval", eval_metrics)
        loop["eval"] = eval_metrics
        update_early_stopping(loop, eval_metrics[es.metric], step, es)
        if plateau_update is not None:
          monitored = _monitor_value(eval_metrics, config.optimizer.reduce_on_plateau.metric)
          state = state.replace(plateau=plateau_update(state.plateau, jnp.float32(monitored)))
      if is_save or loop["stopped_early"]:
        save(step, eval_metrics)
      progress.update(done, **({"loss": last_train["loss"]} if "loss" in last_train else {}))
      signum = interrupts.requested()  # all processes agree, at the same step
      if signum is not None:
        if last_saved != step:
          save(step)
        saver.wait()
        raise interrupt.Interrupted(signum, step)
    if loop["eval"] is None or last_saved != step:
      loop["eval"] = evaluate(state, step)
      writer.write(step, "eval", loop["eval"])
      save(step, loop["eval"])
    saver.wait()
  except Exception as e:
    if not errors.is_disk_full(e):  # Orbax and tensorstore wrap ENOSPC in their own errors
      raise
    raise errors.DiskFullError(
      f"no space left on the device of {workdir} ({_intact(_committed(manager))}); free "
      "space or pass another --workdir"
    ) from e
  finally:
    failing = sys.exc_info()[0] is not None
    try:
      saver.close()
    except Exception:  # noqa: BLE001  (the error in flight is the one to report)
      if not failing:
        raise
      logging.warning("closing the checkpoint manager after an error failed too", exc_info=True)
    finally:
      try:
        writer.close()  # on a full disk its flush fails as well
      except OSError:
        if not failing:
          raise
        logging.warning("closing the metrics files after an error failed too", exc_info=True)
      progress.close()

  sps = progress.steps_per_second(step)
  result = {
    "step": step,
    **{f"train_{k}": v for k, v in last_train.items()},
    **{f"eval_{k}": v for k, v in loop["eval"].items()},
    "best_step": loop["best_step"],
    f"best_{es.metric}": loop["best"],
    "stopped_early": loop["stopped_early"],
    "steps_per_second": sps,
    "nonfinite_steps": nonfinite_steps,
    "input": train_input.feed_kind,
    "train_records": [train_plan.start, train_plan.stop],
    "params_sha256": params_digest(parallel.fetch(state.params)),
  }
  eval_text = ", ".join(f"{k} {v:.4f}" for k, v in loop["eval"].items())
  _log(
    f"done: step {step}/{config.num_train_steps}; eval {eval_text}; best {es.metric} "
    f"{loop['best']:.4f} at step {loop['best_step']}; {sps:.1f} steps/s; "
    f"{time.perf_counter() - t_start:.1f} s"
  )
  return result
