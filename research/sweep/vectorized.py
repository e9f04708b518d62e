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

Evaluation: the trials are evaluated on the validation set only (`research.data.run_splits`),
every `eval_every_steps` and at the end. Each trial's best-validation variables (params and
batch_stats, stacked like the state) are kept beside the state, and a checkpoint holds both
({'train': state, 'best': variables}): once the sweep has chosen a trial by validation,
`evaluate_test` evaluates the test split once, on that trial's best-validation variables, the
parameters whose validation number ranked it.
"""

import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from research import config as config_lib
from research import signals
from research.errors import ConfigError
from research.sweep import space
from research.train import checkpoint as ckpt
from research.train import driver, engine, inputs, loop, parallel, steps, validate
from research.train import metrics as metrics_lib
from research.train import optimizer as optimizer_lib
from research.train import workdir as workdir_lib
from research.train.state import TrainState


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


def require_validation(config: ml_collections.ConfigDict, splits) -> None:
  """ConfigError when `splits` (`research.data.RunSplits`) has no validation set: a sweep
  ranks its trials by validation, never by the test split."""
  if splits.validation is None:
    raise ConfigError(
      f"dataset.validation={config.dataset.validation!r} leaves no validation set, and a sweep "
      "chooses its trials by validation; hold some out, e.g. --config.dataset.validation=0.2"
    )


def run_chunk(configs: list[ml_collections.ConfigDict], workdir: str, log=print) -> list[dict]:
  """Trains the trials of `configs` as one program in `workdir`; returns one result per trial.

  Resumes from workdir/checkpoints. A result holds 'step', 'validation_<metric>' (the last
  evaluation), 'best_step' and 'best_validation_<metric>' (by the config's early_stopping
  metric and mode), 'num_examples' and 'params_sha256' (of the final parameters); no test
  split is read (`evaluate_test`, after the sweep has chosen).
  """
  configs = [config_lib.complete(c) for c in configs]
  base = configs[0]
  info, mesh, splits, plans = loop.plan_inputs(base)
  require_validation(base, splits)
  if not (plans.train.in_memory and plans.validation.in_memory):
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
      base, configs, workdir, info, mesh, splits, plans, model, tx, host_states, lock, log
    )
  finally:
    if lock is not None:
      lock.release()


def _variables(state) -> dict:
  """What evaluation reads of a (stacked) state: {'params', 'batch_stats'}."""
  return {"params": state.params, "batch_stats": state.batch_stats}


@jax.jit
def _select(improved, new, old):
  """Per trial t: `new`'s slice where improved[t], else `old`'s; trees stacked on axis 0.

  improved: (T,) bool. new, old: trees of (T, ...) arrays. Returns a tree of new buffers.
  """

  def pick(n, o):
    return jnp.where(improved.reshape((-1,) + (1,) * (n.ndim - 1)), n, o)

  return jax.tree.map(pick, new, old)


class _TrialRecorder:
  """What a vectorized chunk records, as the driver's hooks: each trial's validation
  evaluations (the last, and the best by the config's early-stopping metric, whose variables
  it keeps in `best`) and the metrics file, one line per trial and evaluation
  {"step", "split": "validation", "trial", ...}."""

  def __init__(self, base, trials, best, evaluate_sums, writer):
    self.es, self.trials, self.best = base.early_stopping, trials, best
    self.evaluate_sums, self.writer = evaluate_sums, writer

  def hooks(self) -> driver.Hooks:
    return driver.Hooks(evaluate=self.evaluate, checkpoint=self.checkpoint, close=self.writer.close)

  def evaluate(self, state, step):
    sums = self.evaluate_sums(state)
    improved = []
    for i, trial in enumerate(self.trials):
      metrics = steps.summarize(_per_trial(sums, i))
      trial["validation"] = metrics
      value = metrics[self.es.metric]
      better = bool(
        np.isfinite(value) and loop.improved(value, trial["best"], self.es.mode, self.es.min_delta)
      )
      if better:
        trial.update(best=value, best_step=step)
      improved.append(better)
      self.writer.write(step, "validation", metrics, trial=i)
    if any(improved):
      self.best = _select(jnp.asarray(improved), _variables(state), self.best)
    return state, False

  def checkpoint(self):
    return {"trials": self.trials}, None


class _Saver:
  """A `checkpoint.Saver` whose checkpoints hold {'train': the stacked state, 'best': each
  trial's best-validation variables} (`_TrialRecorder.best`, read at each save)."""

  def __init__(self, saver: ckpt.Saver, recorder: _TrialRecorder):
    self.saver, self.recorder, self.manager = saver, recorder, saver.manager

  def save(self, step, state, loop_state, metrics=None) -> None:
    self.saver.save(step, {"train": state, "best": self.recorder.best}, loop_state, metrics)

  def wait(self) -> None:
    self.saver.wait()

  def close(self) -> None:
    self.saver.close()


def _train(base, configs, workdir, info, mesh, splits, plans, model, tx, host_states, lock, log):
  t_start = time.perf_counter()
  num_trials = len(configs)
  train_input = inputs.TrainInput(base, plans.train, mesh, seeds=[int(c.seed) for c in configs])
  interval = loop.dispatch_interval(base)
  loss = base.loss
  dispatch = engine.make_train_dispatch(
    jax.vmap(steps.make_train_step(model, tx, loss=loss)),
    mesh,
    global_batch_size=base.batch_size,
    feed="memory",
    num_examples=plans.train.rows,
    augment=inputs.preset(base),
    stats=inputs.device_stats(base),
    max_nonfinite_run=None,
    trials=num_trials,
  )
  eval_step = steps.make_eval_step(model, num_classes=info.num_classes, task=info.task, loss=loss)
  evaluate_sums = inputs.EvalInput(
    base, plans.validation, mesh, jax.vmap(eval_step, in_axes=(0, None))
  )
  manager = ckpt.create_manager(os.path.join(workdir, "checkpoints"), keep=base.keep_checkpoints)
  state = parallel.replicate(host_states, mesh)
  best = parallel.copy(_variables(state))  # new buffers: the state's are donated to each step
  trials = [{"best": None, "best_step": None, "validation": None} for _ in range(num_trials)]
  restored = ckpt.restore_latest(manager, {"train": state, "best": best}, warn=log)
  at = driver.Position()
  if restored is not None:
    saved_state, saved, at.step = restored
    state, best, trials = saved_state["train"], saved_state["best"], saved["trials"]
    at.last_saved = at.step
    at.evaluated_at = at.step if trials[0]["validation"] is not None else None
    log(f"resumed from {workdir}/checkpoints/{at.step}")
  writer = metrics_lib.MetricWriter(workdir, tensorboard=False, start_step=at.step)
  recorder = _TrialRecorder(base, trials, best, evaluate_sums, writer)
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
      checkpoints=driver.Checkpoints(_Saver(ckpt.Saver(manager), recorder), lock, workdir),
      interrupts=interrupts,
    )
  log(
    f"{num_trials} trials of {base.model.name} in one program: {at.step} steps in "
    f"{time.perf_counter() - t_start:.1f} s"
  )
  return _results(base, splits, trials, at.step, parallel.fetch(state.params))


def _results(base, splits, trials, step, params) -> list[dict]:
  metric = base.early_stopping.metric
  return [
    {
      "step": step,
      **{f"validation_{k}": v for k, v in trial["validation"].items()},
      "best_step": trial["best_step"],
      f"best_validation_{metric}": trial["best"],
      "num_examples": splits.counts(),
      "params_sha256": loop.params_digest(_per_trial(params, i)),
    }
    for i, trial in enumerate(trials)
  ]


def load_stacked(workdir: str, item: str = "train") -> dict:
  """A chunk's newest checkpoint, as NumPy: {'params', 'batch_stats'} of `item` ('train': the
  stacked state; 'best': each trial's best-validation variables), each leaf (T, ...)."""
  state_dir = ckpt.find_state_dir(workdir)
  checkpointer = ocp.PyTreeCheckpointer()
  metadata = checkpointer.metadata(state_dir).item_metadata.tree[item]
  target = {
    c: jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), metadata[c])
    for c in ("params", "batch_stats")
    if metadata.get(c)
  }
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
  restored = checkpointer.restore(
    state_dir,
    args=ocp.args.PyTreeRestore(
      item={item: target}, restore_args={item: restore_args}, partial_restore=True
    ),
  )[item]
  return {"params": restored.get("params", {}), "batch_stats": restored.get("batch_stats", {})}


def evaluate_test(config: ml_collections.ConfigDict, workdir: str, index: int, step: int) -> dict:
  """The test split's metrics of trial `index` of the chunk in `workdir`, on its
  best-validation variables (those of `step`, its best step), evaluated once; also written to
  the chunk's metrics.jsonl ({"split": "test", "trial", "params": "best"})."""
  config = config_lib.complete(config)
  info, mesh, _, plans = loop.plan_inputs(config)
  model = loop.create_model(config, info.num_classes)
  variables = _per_trial(load_stacked(workdir, "best"), index)
  state = TrainState(
    step=np.zeros((), np.int32),
    params=variables["params"],
    batch_stats=variables["batch_stats"],
    opt_state=(),
    plateau=(),
    rng=np.zeros((2,), np.uint32),
  )
  eval_step = steps.make_eval_step(
    model, num_classes=info.num_classes, task=info.task, loss=config.loss
  )
  evaluate = inputs.EvalInput(config, plans.test, mesh, eval_step)
  metrics = steps.summarize(evaluate(parallel.replicate(state, mesh)))
  writer = metrics_lib.MetricWriter(workdir, tensorboard=False, start_step=config.num_train_steps)
  try:
    writer.write(step, "test", metrics, trial=index, params="best")
  finally:
    writer.close()
  return metrics


def trial_bytes(config, model, info) -> int:
  """Bytes one trial's state occupies (parameters, optimizer state), without computing it."""
  tx = optimizer_lib.build_optimizer(config.optimizer, inject=True)
  abstract = loop.abstract_state(config, model, info, tx, None)
  return sum(int(np.prod(x.shape)) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(abstract))
