"""A sweep from start to report: points, mode, trials (vectorized or sequential), outputs.

DIR/sweep.json holds the sweep's definition (a rerun with another one is refused), written only
once every trial's config has passed research.main's checks (`Sweep._check_trials`); each
finished trial leaves DIR/results/trial_NNN.json, so a killed or partial sweep (or a Slurm job
array running one trial per task) resumes where it stopped and a finished one only reports.
Outputs: DIR/trials.jsonl (one line per trial: 'trial', 'stage', 'overrides', 'final' and 'best'
evaluation metrics, 'mode', 'diverged'), a leaderboard on stdout, DIR/best_config.json (the best
trial's whole config: `python -m research.main
--config=experiments/configs/from_json.py:DIR/best_config.json --workdir=...`) and DIR/sweep.png.
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
    checks = list(points)
    for d in self.dims:
      if not d.continuous:
        checks += [{**points[0], d.key: value} for value in d.values]
    seen = set()
    for point in checks:
      if repr(point) in seen:
        continue
      seen.add(repr(point))
      trial = space_lib.apply(self.config, point)
      try:
        validate.check_config(trial)
        optimizer_lib.build_optimizer(trial.optimizer)
        optimizer_lib.build_plateau(trial.optimizer)
      except ConfigError as e:
        values = ", ".join(f"{k}={v!r}" for k, v in point.items())
        raise ConfigError(
          f"--space gives a trial research.main would refuse ({values}): {e}"
        ) from e

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

  def _record(
    self, index: int, stage: int, point: dict, result: dict | None, mode: str, config
  ) -> dict:
    metric = self.es.metric
    final = {k[len("eval_") :]: v for k, v in (result or {}).items() if k.startswith("eval_")}
    best_value = None if result is None else result.get(f"best_{metric}")
    diverged = result is None or not all(
      isinstance(v, float) and math.isfinite(v) for v in final.values()
    )
    record = {
      "trial": index,
      "stage": stage,
      "overrides": point,
      "final": final,
      "best": {metric: best_value, "step": None if result is None else result.get("best_step")},
      "mode": mode,
      "diverged": diverged,
      "params_sha256": None if result is None else result.get("params_sha256"),
      "config": json.loads(validate.config_json(config)),
    }
    if jax.process_index() == 0:
      path = self._result_path(index)
      with open(path + ".tmp", "w") as f:
        json.dump(record, f)
      os.replace(path + ".tmp", path)
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
    configs = vectorized.trial_configs(self.config, points)
    indices = list(range(first, first + len(points)))
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
        directory = os.path.join(
          self.workdir, f"stage{stage}_trials_{chunk[0]:03d}-{chunk[-1]:03d}"
        )
        os.makedirs(directory, exist_ok=True)
        results = vectorized.run_chunk([configs[i - first] for i in chunk], directory, log=self.log)
        for i, result in zip(chunk, results, strict=True):
          records[i] = self._record(i, stage, points[i - first], result, mode, configs[i - first])
    for i in todo if mode == "sequential" else ():
      from research.train import DivergenceError, train_and_evaluate  # noqa: PLC0415

      try:
        result = train_and_evaluate(
          configs[i - first], os.path.join(self.workdir, f"trial_{i:03d}")
        )
      except DivergenceError as e:
        self.log(f"trial {i} diverged: {e}")
        result = None
      records[i] = self._record(i, stage, points[i - first], result, mode, configs[i - first])
    return [records[i] for i in indices]

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
    return records


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


def ranked(records: list[dict], metric: str, mode: str) -> list[dict]:
  """Best first by the best evaluation value of `metric`; diverged trials last."""

  def key(r):
    value = r["best"].get(metric)
    if r["diverged"] or value is None or not math.isfinite(value):
      return (1, 0.0)
    return (0, -value if mode == "max" else value)

  return sorted(records, key=key)
