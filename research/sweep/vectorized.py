"""Many trials in one program: `jax.vmap` of research.train's step over the trials' states.

Trials that differ only in numbers the program takes as data run together. Each trial gets its
own TrainState exactly as `research.main` would build it from its config (parameters from its
seed, an optimizer state holding its hyperparameters through `optax.inject_hyperparams`, its
dropout key); the states are stacked on a leading trial axis and one compiled dispatch of
`engine.make_train_dispatch(trials=T)` advances all of them, `vmap`-ing the library's train
step (`steps.make_train_step`) over that axis. So trial i follows the same arithmetic as
`research.main` with trial i's values (to float tolerance: vmap may order the sums otherwise).

Batches: per trial. Every trial draws its epoch orders and augmentation keys from its own seed,
as `research.main` does, so that a seed sweep means what it says and trial i equals its own
run; the split itself is in device memory once, shared by all trials. (Sharing one batch per
step would gather once instead of T times, but would make every trial of a seed sweep see the
same order.)

What can be swept this way (`vectorizable`): the seed, and numeric optimizer hyperparameters
(learning rate with a constant schedule, momentum, betas, eps, weight decay, clip norms) whose
values all build the same optimizer structure. Anything that changes shapes or the program
(widths, depths, names, batch size, the dataset, dropout rates that Flax compares with 0) runs
one trial after another instead (`research.sweep` mode `sequential`).

Trials that do not fit in memory together run in chunks (`research.sweep.run`), each chunk a
vectorized run with its own checkpoints under DIR/stage<S>_trials_<first>-<last>; a killed
sweep resumes every chunk from its last checkpoint and ends as an uninterrupted one.
"""

import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from research import config as config_lib
from research import signals
from research.errors import ConfigError
from research.sweep import space
from research.train import checkpoint as ckpt
from research.train import driver, engine, inputs, loop, parallel, steps, validate
from research.train import metrics as metrics_lib
from research.train import optimizer as optimizer_lib
from research.train import workdir as workdir_lib


def vectorizable(config: ml_collections.ConfigDict, dims, points: list[dict]) -> str | None:
  """None if these trials can run as one program, else why not (naming the key)."""
  config = config_lib.complete(config)
  for d in dims:
    if d.key == "seed":
      continue
    head, _, leaf = d.key.partition(".")
    if head != "optimizer" or leaf.split(".")[0] in optimizer_lib.STRUCTURE_KEYS:
      return f"{d.key} changes the model, the data or the program, not just numbers"
    if not all(
      isinstance(p[d.key], int | float) and not isinstance(p[d.key], bool) for p in points
    ):
      return f"{d.key} takes values that are not numbers"
    if leaf == "learning_rate" and config.optimizer.schedule.name != "constant":
      return (
        f"{d.key} with optimizer.schedule.name={config.optimizer.schedule.name!r}: the "
        "schedule holds the rate"
      )
  if config.optimizer.reduce_on_plateau.enabled:
    return "optimizer.reduce_on_plateau is on (its patience counts evaluations per run)"
  if config.early_stopping.patience:
    return "early_stopping.patience > 0 (trials would stop at different steps)"
  if config.init_from or config.freeze:
    return "init_from / freeze (fine-tuning runs one trial at a time)"
  return None


def trial_configs(config, points):
  """One config per point: the base config with the point's values set (`space.apply`)."""
  return [space.apply(config, point) for point in points]


def _stack(trees):
  return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def _structure(state):
  return jax.tree.structure(state), [
    (np.shape(x), np.asarray(x).dtype) for x in jax.tree.leaves(state)
  ]


def initial_states(configs, model, info):
  """Each trial's TrainState as research.main builds it (host arrays), stacked: (T, ...)."""
  states = []
  for cfg in configs:
    tx = optimizer_lib.build_optimizer(cfg.optimizer, inject=True)
    state, _ = loop.initial_state(cfg, model, info, tx, None, None)
    states.append(state)
  if any(_structure(s) != _structure(states[0]) for s in states[1:]):
    raise ConfigError(
      "the trials build optimizer states of different structures; run them with --mode=sequential"
    )
  return _stack(states), tx


def _per_trial(tree, i):
  return jax.tree.map(lambda x: x[i], tree)


def run_chunk(configs: list[ml_collections.ConfigDict], workdir: str, log=print) -> list[dict]:
  """Trains the trials of `configs` as one program in `workdir`; returns one result per trial.

  Resumes from workdir/checkpoints. A result holds 'step', 'eval_<metric>' (final), 'best_step'
  and 'best_<metric>' (by the config's early_stopping metric and mode), 'params_sha256'.
  """
  configs = [config_lib.complete(c) for c in configs]
  base = configs[0]
  info, mesh, (train_plan, eval_plan) = loop.plan_inputs(base)
  if not (train_plan.in_memory and eval_plan.in_memory):
    raise ConfigError(
      f"{base.dataset.name} does not fit dataset.in_memory_limit_mb: vectorized "
      "trials need their data in device memory; use --mode=sequential"
    )
  model = loop.create_model(base, info.num_classes)
  host_states, tx = initial_states(configs, model, info)
  lock = workdir_lib.Lock(workdir).acquire() if jax.process_index() == 0 else None
  try:
    if jax.process_index() == 0:
      with open(os.path.join(workdir, "trials.json"), "w") as f:
        json.dump([json.loads(validate.config_json(c)) for c in configs], f)
    return _train(
      base,
      configs,
      workdir,
      info,
      mesh,
      (train_plan, eval_plan),
      model,
      tx,
      host_states,
      lock,
      log,
    )
  finally:
    if lock is not None:
      lock.release()


class _TrialRecorder:
  """What a vectorized chunk records, as the driver's hooks: each trial's evaluations (its
  final and best by the config's early-stopping metric) and the metrics file, one line per
  trial and evaluation {"step", "split": "eval", "trial", ...}."""

  def __init__(self, base, trials, evaluate_sums, writer):
    self.es, self.trials = base.early_stopping, trials
    self.evaluate_sums, self.writer = evaluate_sums, writer

  def hooks(self) -> driver.Hooks:
    return driver.Hooks(evaluate=self.evaluate, checkpoint=self.checkpoint, close=self.writer.close)

  def evaluate(self, state, step):
    sums = self.evaluate_sums(state)
    for i, trial in enumerate(self.trials):
      metrics = steps.summarize(_per_trial(sums, i))
      trial["eval"] = metrics
      value = metrics[self.es.metric]
      if np.isfinite(value) and loop.improved(
        value, trial["best"], self.es.mode, self.es.min_delta
      ):
        trial.update(best=value, best_step=step)
      self.writer.write(step, "eval", metrics, trial=i)
    return state, False

  def checkpoint(self):
    return {"trials": self.trials}, None


def _train(base, configs, workdir, info, mesh, plans, model, tx, host_states, lock, log):
  t_start = time.perf_counter()
  train_plan, eval_plan = plans
  num_trials = len(configs)
  train_input = inputs.TrainInput(base, train_plan, mesh, seeds=[int(c.seed) for c in configs])
  interval = loop.dispatch_interval(base)
  loss = base.loss
  dispatch = engine.make_train_dispatch(
    jax.vmap(steps.make_train_step(model, tx, loss=loss)),
    mesh,
    global_batch_size=base.batch_size,
    feed="memory",
    num_examples=train_plan.rows,
    augment=inputs.preset(base),
    stats=inputs.device_stats(base),
    max_nonfinite_run=None,
    trials=num_trials,
  )
  eval_step = steps.make_eval_step(model, num_classes=info.num_classes, task=info.task, loss=loss)
  evaluate_sums = inputs.EvalInput(base, eval_plan, mesh, jax.vmap(eval_step, in_axes=(0, None)))
  manager = ckpt.create_manager(os.path.join(workdir, "checkpoints"), keep=base.keep_checkpoints)
  state = parallel.replicate(host_states, mesh)
  trials = [{"best": None, "best_step": None, "eval": None} for _ in range(num_trials)]
  restored = ckpt.restore_latest(manager, state, warn=log)
  at = driver.Position()
  if restored is not None:
    state, saved, at.step = restored
    trials = saved["trials"]
    at.last_saved = at.step
    at.evaluated_at = at.step if trials[0]["eval"] is not None else None
    log(f"resumed from {workdir}/checkpoints/{at.step}")
  writer = metrics_lib.MetricWriter(workdir, tensorboard=False, start_step=at.step)
  recorder = _TrialRecorder(base, trials, evaluate_sums, writer)
  schedule = driver.Schedule(
    total=base.num_train_steps,
    interval=interval,
    eval_every=base.eval_every_steps,
    checkpoint_every=base.checkpoint_every_steps,
  )

  with signals.Interrupts() as interrupts:
    state = driver.run(
      state,
      dispatch,
      lambda num_steps: train_input.feed(num_steps, interval),
      schedule,
      recorder.hooks(),
      at,
      checkpoints=driver.Checkpoints(ckpt.Saver(manager), lock, workdir),
      interrupts=interrupts,
    )
  log(
    f"{num_trials} trials of {base.model.name} in one program: {at.step} steps in "
    f"{time.perf_counter() - t_start:.1f} s"
  )
  return _results(base, trials, at.step, parallel.fetch(state.params))


def _results(base, trials, step, params) -> list[dict]:
  metric = base.early_stopping.metric
  return [
    {
      "step": step,
      **{f"eval_{k}": v for k, v in trial["eval"].items()},
      "best_step": trial["best_step"],
      f"best_{metric}": trial["best"],
      "params_sha256": loop.params_digest(_per_trial(params, i)),
    }
    for i, trial in enumerate(trials)
  ]


def trial_bytes(config, model, info) -> int:
  """Bytes one trial's state occupies (parameters, optimizer state), without computing it."""
  tx = optimizer_lib.build_optimizer(config.optimizer, inject=True)
  abstract = loop.abstract_state(config, model, info, tx, None)
  return sum(int(np.prod(x.shape)) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(abstract))
