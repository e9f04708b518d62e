"""A sweep from start to report: points, mode, trials (vectorized or sequential), outputs.

Selection uses the validation set only (`research.data.run_splits`: held out of the training
split): trials are ranked by their best validation value of `early_stopping.metric`, the coarse
stage is narrowed by it, and the chosen trial is the best of the last stage. The test split is
evaluated once, after selection, for the chosen trial only (on its best-validation parameters:
the ones its validation number comes from); no other trial's test number is ever computed.

Coarse to fine (`refine` > 0, the lecture's 粗搜索 / 精搜索): the first stage trains each trial
`coarse_epochs` epochs of the training split, the second samples `trials` points inside the
range of the `refine` best coarse trials and trains each `fine_epochs` epochs; an epoch count
E is ceil(E * num_train_examples / batch_size) steps (`epoch_steps`). Without `refine`, the one
stage trains `config.num_train_steps` steps.

DIR/sweep.json holds the sweep's definition (a rerun with another one is refused), written only
once every trial's config has passed research.main's checks (`Sweep._check_trials`); each
finished trial leaves DIR/results/trial_NNN.json and the chosen trial's test DIR/results/test.json,
so a killed or partial sweep (or a Slurm job array running one trial per task) resumes where it
stopped and a finished one only reports. Outputs: DIR/trials.jsonl (one line per trial, keys as
research.main's result: 'trial', 'stage', 'overrides', 'steps', 'epochs', 'validation_<m>' (last
evaluation), 'best_step', 'best_validation_<metric>' (what ranks it), 'mode', 'diverged',
'params_sha256', 'chosen'; and on the chosen trial only 'test_<m>' and 'test_step'), a
leaderboard on stdout, DIR/best_config.json (the chosen trial's whole config: `python -m
research.main --config=experiments/configs/from_json.py:DIR/best_config.json --workdir=...`) and
DIR/sweep.png.
"""

import json
import math
import os

import jax
import ml_collections

from research.errors import ConfigError, WorkdirError
from research.sweep import space as space_lib
from research.sweep import vectorized
from research.train import optimizer as optimizer_lib
from research.train import validate
from research.train import workdir as workdir_lib

MODES = ("auto", "vectorized", "sequential")
STAGE_NAMES = {1: "coarse", 2: "fine"}  # with refine; a sweep without it has one stage
METHODS = ("random", "grid")
DEFAULT_BUDGET_FRACTION = 0.25  # of device memory (CPU: of RAM) for one chunk's trial states
# What research.main writes at the top of its workdir; a sweep writes these only in its trials'
# own subdirectories (DIR/trial_NNN, DIR/stageS_trials_A-B).
RUN_FILES = ("config.json", "checkpoints", "metrics.jsonl")


class Sweep:
  """A sweep of `config` over `dims` in `workdir` (see the module docstring)."""

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    workdir: str,
    dims,
    *,
    method: str,
    trials: int,
    seed: int,
    mode: str,
    refine: int = 0,
    coarse_epochs: float = 1.0,
    fine_epochs: float = 5.0,
    trials_per_program: int = 0,
    log=print,
  ):
    if method not in METHODS:
      raise ConfigError(f"--method={method!r} must be one of {METHODS}")
    if mode not in MODES:
      raise ConfigError(f"--mode={mode!r} must be one of {MODES}")
    if trials < 1:
      raise ConfigError(f"--trials={trials} must be at least 1")
    if refine < 0 or refine > trials:
      raise ConfigError(f"--refine={refine} must be between 0 and --trials={trials}")
    for name, epochs in (("coarse_epochs", coarse_epochs), ("fine_epochs", fine_epochs)):
      if isinstance(epochs, bool) or not (isinstance(epochs, int | float) and epochs > 0):
        raise ConfigError(
          f"--{name}={epochs!r} must be a positive number of epochs of the training split "
          "(e.g. 1 or 0.5)"
        )
      if not math.isfinite(epochs):
        raise ConfigError(f"--{name}={epochs!r} must be a finite number of epochs, e.g. 5")
    if len({d.key for d in dims}) != len(dims):
      raise ConfigError("a key appears in more than one --space")
    workdir_lib.check_path(workdir)
    check_not_a_run(workdir)
    validate.check_config(config)
    self.config, self.workdir, self.dims, self.log = config, os.path.abspath(workdir), dims, log
    self.method, self.trials, self.seed, self.mode, self.refine = (
      method,
      trials,
      seed,
      mode,
      refine,
    )
    self.trials_per_program = trials_per_program
    self.es = config.early_stopping
    self.splits = sweep_splits(config)
    self.epochs = {1: float(coarse_epochs), 2: float(fine_epochs)} if refine else {}
    self.stage_steps = {
      stage: epoch_steps(epochs, self.splits.train.size, config.batch_size)
      for stage, epochs in self.epochs.items()
    }
    self._configs = {}  # trial index -> its config, as run_stage builds it
    self.stages = [self._points(dims, method, seed)]
    self._check_trials(self.stages[0])
    self._check_mode(self.stages[0])

  # ------------------------------------------------------------------------- definition

  def _points(self, dims, method, seed):
    if method == "grid":
      return space_lib.grid_points(dims, self.trials)
    return space_lib.random_points(dims, self.trials, seed)

  def _check_trials(self, points):
    """Every trial's config passes the checks research.main runs before compiling (the config's
    and the optimizer's), before anything is written: all points of the first stage, and each
    listed value of every choice / grid key (the refined stage draws them anew)."""
    checks = [(1, p) for p in points]
    for d in self.dims:
      if not d.continuous:
        checks += [(1, {**points[0], d.key: value}) for value in d.values]
    if self.refine:
      checks.append((2, points[0]))  # the fine stage's length
    seen = set()
    for stage, point in checks:
      if repr((stage, point)) in seen:
        continue
      seen.add(repr((stage, point)))
      trial = space_lib.apply(self.stage_config(stage), point)
      try:
        validate.check_config(trial)
        optimizer_lib.build_optimizer(trial.optimizer)
        optimizer_lib.build_plateau(trial.optimizer)
      except ConfigError as e:
        values = ", ".join(f"{k}={v!r}" for k, v in point.items())
        raise ConfigError(
          f"--space gives a trial research.main would refuse ({values}): {e}"
        ) from e

  def stage_config(self, stage: int) -> ml_collections.ConfigDict:
    """The base config of `stage`: with `refine`, num_train_steps set to the stage's epochs."""
    if stage not in self.stage_steps:
      return self.config
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.num_train_steps = self.stage_steps[stage]
    return config

  def describe_stages(self) -> str:
    """'stage 1 (coarse): 1 epoch = 18 steps; stage 2 (fine): 5 epochs = 90 steps' (epochs of
    the 1,150 training examples at batch 64), or the one stage's config.num_train_steps."""
    if not self.refine:
      return f"{self.config.num_train_steps} steps (config.num_train_steps) per trial"
    stages = "; ".join(
      f"stage {s} ({STAGE_NAMES[s]}): {_epochs(self.epochs[s])} = {self.stage_steps[s]} steps"
      for s in (1, 2)
    )
    return (
      f"{stages} (an epoch: {self.splits.train.size:,} training examples at batch "
      f"{self.config.batch_size})"
    )

  def _check_mode(self, points):
    reason = vectorized.vectorizable(self.config, self.dims, points)
    if self.mode == "vectorized" and reason:
      raise ConfigError(f"--mode=vectorized: {reason}; use --mode=auto or sequential")

  def definition(self) -> dict:
    return {
      "spaces": [d.describe() for d in self.dims],
      "method": self.method,
      "trials": self.trials,
      "seed": self.seed,
      "refine": self.refine,
      **({"epochs": {STAGE_NAMES[s]: e for s, e in self.epochs.items()}} if self.refine else {}),
      "config": json.loads(validate.config_json(self.config)),
    }

  def _claim_workdir(self):
    path = os.path.join(self.workdir, "sweep.json")
    mine = self.definition()
    if os.path.exists(path):
      with open(path) as f:
        saved = json.load(f)
      if saved != mine:
        differing = sorted(k for k in mine if saved.get(k) != mine[k])
        raise WorkdirError(
          f"{self.workdir} holds another sweep (differs in {differing}); use a "
          "new --workdir, or the same arguments to resume it"
        )
      return
    if jax.process_index() == 0:
      os.makedirs(os.path.join(self.workdir, "results"), exist_ok=True)
      with open(path + ".tmp", "w") as f:
        json.dump(mine, f, indent=2)
      os.replace(path + ".tmp", path)

  # ------------------------------------------------------------------------- trials

  def _result_path(self, index: int) -> str:
    return os.path.join(self.workdir, "results", f"trial_{index:03d}.json")

  def _done(self, index: int) -> dict | None:
    path = self._result_path(index)
    if not os.path.exists(path):
      return None
    with open(path) as f:
      return json.load(f)

  def _record(self, index, stage, point, result, mode, config, program, position=None) -> dict:
    """A trial's line of trials.jsonl (saved as DIR/results/trial_NNN.json): its validation
    numbers only; `program` is the directory it trained in, `position` its index there (a
    vectorized chunk's trial axis)."""
    metric = self.es.metric
    result = result or {}
    validation = {
      f"validation_{k[len('validation_') :]}": v
      for k, v in result.items()
      if k.startswith("validation_")
    }
    diverged = not validation or not all(
      isinstance(v, float) and math.isfinite(v) for v in validation.values()
    )
    record = {
      "trial": index,
      "stage": stage,
      "overrides": point,
      "steps": config.num_train_steps,
      "epochs": self.epochs.get(stage),
      **validation,
      "best_step": result.get("best_step"),
      f"best_validation_{metric}": result.get(f"best_validation_{metric}"),
      "num_examples": result.get("num_examples"),
      "mode": mode,
      "diverged": diverged,
      "params_sha256": result.get("params_sha256"),
      "program": {"directory": program, "index": position},
      "config": json.loads(validate.config_json(config)),
    }
    if jax.process_index() == 0:
      _write_json(self._result_path(index), record)
    return record

  def _chunk_size(self, configs) -> int:
    if self.trials_per_program:
      return self.trials_per_program
    from research import data as data_lib  # noqa: PLC0415
    from research.train import loop  # noqa: PLC0415

    info = data_lib.get_info(self.config.dataset.name, self.config.dataset.data_dir)
    model = loop.create_model(self.config, info.num_classes)
    # the state, its gradient and its update are each about one state: 4x as a rough bound
    per_trial = 4 * vectorized.trial_bytes(configs[0], model, info)
    stats = jax.devices()[0].memory_stats() or {}
    budget = stats.get("bytes_limit") or (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return max(1, min(len(configs), int(DEFAULT_BUDGET_FRACTION * budget) // max(per_trial, 1)))

  def run_stage(self, stage: int, points: list[dict], first: int, only: int | None) -> list:
    configs = vectorized.trial_configs(self.stage_config(stage), points)
    indices = list(range(first, first + len(points)))
    self._configs.update(zip(indices, configs, strict=True))
    reason = vectorized.vectorizable(self.config, self.dims, points)
    mode = (
      "sequential" if self.mode == "sequential" or reason or only is not None else ("vectorized")
    )
    records = {i: self._done(i) for i in indices}
    todo = [i for i in indices if records[i] is None and (only is None or i == only)]
    if todo:
      self.log(
        f"stage {stage}: {len(todo)} of {len(indices)} trials to run, {mode}"
        + (f" ({reason})" if reason and self.mode == "auto" else "")
      )
    if mode == "vectorized" and todo:
      size = self._chunk_size(configs)
      for c in range(0, len(todo), size):
        chunk = todo[c : c + size]
        name = f"stage{stage}_trials_{chunk[0]:03d}-{chunk[-1]:03d}"
        directory = os.path.join(self.workdir, name)
        os.makedirs(directory, exist_ok=True)
        results = vectorized.run_chunk([configs[i - first] for i in chunk], directory, log=self.log)
        for position, (i, result) in enumerate(zip(chunk, results, strict=True)):
          records[i] = self._record(
            i, stage, points[i - first], result, mode, configs[i - first], name, position
          )
    for i in todo if mode == "sequential" else ():
      from research.train import DivergenceError, train_and_evaluate  # noqa: PLC0415

      name = f"trial_{i:03d}"
      try:  # validation only: the test split waits for the choice (`test_chosen`)
        result = train_and_evaluate(
          configs[i - first], os.path.join(self.workdir, name), test=False
        )
      except DivergenceError as e:
        self.log(f"trial {i} diverged: {e}")
        result = None
      records[i] = self._record(i, stage, points[i - first], result, mode, configs[i - first], name)
    return [records[i] for i in indices]

  def test_chosen(self, records: list[dict]) -> list[dict]:
    """Chooses a trial by validation (`chosen`), evaluates its test split once (or reads
    DIR/results/test.json when it was) and returns the records, each with 'chosen' and the
    chosen one with 'test_<metric>' and 'test_step'. All trials diverged: nothing is tested."""
    best = chosen(records, self.es.metric, self.es.mode)
    path = os.path.join(self.workdir, "results", "test.json")
    test = None
    if os.path.exists(path):
      with open(path) as f:
        test = json.load(f)
      if test.get("trial") != best["trial"]:
        test = None
    if test is None and not best["diverged"]:
      test = self._evaluate_test(best)
      if jax.process_index() == 0:
        _write_json(path, test)
    out = []
    for r in records:
      r = {**r, "chosen": r["trial"] == best["trial"]}
      if r["chosen"] and test is not None:
        r.update({f"test_{k}": v for k, v in test["metrics"].items()}, test_step=test["step"])
      out.append(r)
    return out

  def _evaluate_test(self, record: dict) -> dict:
    """The test split's metrics of `record`'s trial, on its best-validation parameters."""
    config = self._configs[record["trial"]]
    directory = os.path.join(self.workdir, record["program"]["directory"])
    self.log(
      f"trial {record['trial']} chosen by validation; evaluating its test split once "
      f"({self.splits.test.size:,} examples of {self.splits.test.stored!r})"
    )
    if record["mode"] == "vectorized":
      step = record["best_step"]
      metrics = vectorized.evaluate_test(config, directory, record["program"]["index"], step)
    else:
      from research.train import train_and_evaluate  # noqa: PLC0415

      # a finished run trains no further: it only evaluates the test split
      result = train_and_evaluate(config, directory, test=True)
      step = result["test_step"]
      metrics = {
        k[len("test_") :]: v
        for k, v in result.items()
        if k.startswith("test_") and k != "test_step"
      }
    return {
      "trial": record["trial"],
      "split": "test",
      "params": "best validation",
      "step": step,
      "num_examples": self.splits.test.size,
      "metrics": metrics,
    }

  def run(self, only: int | None = None) -> list[dict] | None:
    """Runs what is not done yet; returns every trial's record, or None if some are missing
    (`only`: run just that trial, as one task of a job array; trials of the refined stage
    are numbered on from the first stage's and run once the first stage is done)."""
    first = len(self.stages[0])
    total = first + (self.trials if self.refine else 0)
    if only is not None and not 0 <= only < total:
      raise ConfigError(
        f"--trial={only} is not a trial of this sweep; trials are numbered "
        f"0..{total - 1}"
        + (f" (--refine: the second stage from {first} on)" if self.refine else "")
      )
    self._claim_workdir()
    records = self.run_stage(1, self.stages[0], 0, only)
    if self.refine and all(r is not None for r in records):
      best = ranked(records, self.es.metric, self.es.mode)[: self.refine]
      dims = space_lib.refined(self.dims, [r["overrides"] for r in best])
      points = space_lib.random_points(dims, self.trials, self.seed + 1)
      records += self.run_stage(2, points, len(records), only)
    elif self.refine:
      if only is not None and only >= first:
        missing = sum(r is None for r in records)
        raise ConfigError(
          f"--trial={only} is in the refined stage, which starts once all {first} "
          f"first-stage trials are done ({missing} are not); submit the second "
          "array with --dependency=afterok:FIRST_JOB_ID"
        )
      records += [None] * self.trials  # the second stage waits for the whole first
    if any(r is None for r in records):
      return None
    return self.test_chosen(records)


def _write_json(path: str, value) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(value, f)
  os.replace(path + ".tmp", path)


def _epochs(epochs: float) -> str:
  return f"{epochs:g} epoch" + ("" if epochs == 1 else "s")


def epoch_steps(epochs: float, num_train_examples: int, batch_size: int) -> int:
  """Training steps of `epochs` epochs: ceil(epochs * num_train_examples / batch_size), at
  least 1 (the global batch; the training split after the validation set is held out)."""
  return max(1, math.ceil(epochs * num_train_examples / batch_size - 1e-9))


def sweep_splits(config: ml_collections.ConfigDict):
  """The config's `research.data.RunSplits`; ConfigError without a validation set (a sweep
  ranks its trials by validation, never by the test split)."""
  from research import config as config_lib  # noqa: PLC0415
  from research.train import inputs  # noqa: PLC0415

  config = config_lib.complete(config)
  splits = inputs.run_splits(config)
  vectorized.require_validation(config, splits)
  return splits


def check_not_a_run(workdir: str) -> None:
  """WorkdirError if `workdir` holds a research.main run (its config.json, checkpoints or
  metrics at the top): the sweep's files would mix with the run's."""
  path = os.path.expanduser(workdir)
  found = [name for name in RUN_FILES if os.path.lexists(os.path.join(path, name))]
  if found:
    raise WorkdirError(
      f"--workdir={workdir!r} holds a research.main run ({', '.join(found)}), not a sweep; "
      "use another --workdir for the sweep"
    )


def chosen(records: list[dict], metric: str, mode: str) -> dict:
  """The sweep's choice: the best trial of the last stage by validation (the fine stage of a
  coarse-to-fine sweep: its trials trained longer than the coarse ones)."""
  last = max(r["stage"] for r in records)
  return ranked([r for r in records if r["stage"] == last], metric, mode)[0]


def ranked(records: list[dict], metric: str, mode: str) -> list[dict]:
  """Best first by the best validation value of `metric`; diverged trials last."""

  def key(r):
    value = r.get(f"best_validation_{metric}")
    if r["diverged"] or value is None or not math.isfinite(value):
      return (1, 0.0)
    return (0, -value if mode == "max" else value)

  return sorted(records, key=key)
