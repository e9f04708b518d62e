"""The one driver every training runs through: `research.main`, the sweeps and the figures.

    state = driver.run(state, dispatch, feed, schedule, hooks, position, checkpoints=..., ...)

The driver owns what every run must do the same way: dispatch steps in chunks that end at every
periodic action, decide which actions fall on a step (`itstime`), evaluate, checkpoint (with
the workdir lock re-checked before each save), stop at the next boundary on SIGTERM / SIGINT
after a save, map a full disk to one line, and close the checkpoint writer and the metric files
without hiding the error in flight. What differs between its callers is handed to it as data:

* `dispatch`, built by `engine.make_train_dispatch` from the caller's step (vmapped over a
  trial axis for a vectorized sweep, recording per-step metrics for a figure), and
  `feed(num_steps)`, the input of the next dispatch (a split in device memory, or the host
  pipeline's stacked batches). This is the one place that dispatches training steps; each
  dispatch's `out` is read to the host once.
* `Hooks`: what the caller records. `after_dispatch` adds a dispatch's metrics and raises on
  divergence, `log` writes the training metrics, `evaluate` evaluates (on the validation set)
  and says whether to stop early, `new_best` whether that evaluation is the best so far (the
  step is then saved at once, so the best checkpoint is the best evaluation's parameters),
  `checkpoint` gives the loop state and monitored metrics a checkpoint holds.

Nothing here branches on who called it.
"""

import dataclasses
import logging
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from research import signals
from research.train import errors, parallel


def itstime(step: int, every: int, total: int) -> bool:
  """Whether a periodic action with period `every` (0: never) falls on `step` of `total`.

  The last step always counts, so a run ends evaluated and saved whatever its periods.
  """
  return step == total or (every > 0 and step % every == 0)


class Schedule(NamedTuple):
  """When things happen, in steps. `interval` divides every nonzero period (dispatches end on
  each action); 0 for a period means never (the last step excepted)."""

  total: int
  interval: int
  log_every: int = 0
  eval_every: int = 0
  checkpoint_every: int = 0

  def chunk(self, step: int) -> int:
    """Steps of the dispatch starting at `step`: to the next multiple of `interval`."""
    return min(self.interval - step % self.interval, self.total - step)


class Hooks(NamedTuple):
  """What a caller records; every field may be None (nothing to do)."""

  after_dispatch: Callable[[dict, int], None] | None = None  # (out, step); may raise
  log: Callable[[Any, int], None] | None = None  # (state, step)
  evaluate: Callable[[Any, int], tuple[Any, bool]] | None = None  # -> (state, stop early)
  new_best: Callable[[int], bool] | None = None  # (step) after `evaluate`: save this step now
  checkpoint: Callable[[], tuple[dict, dict | None]] | None = None  # -> (loop state, monitored)
  progress: Callable[[int], None] | None = None  # (steps done)
  close: Callable[[], None] | None = None  # metric files, progress bar


class Checkpoints(NamedTuple):
  """Where a run saves: a `checkpoint.Saver`, the workdir `Lock` (or None on other processes)
  and the directory, named in the full-disk line."""

  saver: Any
  lock: Any
  workdir: str

  def committed(self) -> int:
    """The newest step whose checkpoint is complete on disk, or -1."""
    manager = self.saver.manager
    manager.reload()
    latest = manager.latest_step()
    return -1 if latest is None else latest


def intact(last_saved: int) -> str:
  """The clause a stopping run's message ends with."""
  if last_saved < 0:
    return "no checkpoint has been saved yet"
  return f"checkpoints up to step {last_saved} are intact"


@dataclasses.dataclass
class Position:
  """Where a run is; `run` advances it, and the caller's hooks may read it (a divergence
  message names the last saved step).

  step: the step reached. last_saved: the step of the newest checkpoint started, or -1.
  evaluated_at: the step of the newest evaluation, or None (an evaluation restored with the
  state counts). stopped_early: an evaluation asked to stop.
  """

  step: int = 0
  last_saved: int = -1
  evaluated_at: int | None = None
  stopped_early: bool = False
  nonfinite_run: int = 0  # non-finite losses in a row at the end of the last dispatch

  def intact(self) -> str:
    return intact(self.last_saved)


def _evaluate(state, at: Position, hooks: Hooks):
  if hooks.evaluate is not None:
    state, stop = hooks.evaluate(state, at.step)
    at.stopped_early = at.stopped_early or stop
  at.evaluated_at = at.step
  return state


def _save(state, at: Position, hooks: Hooks, checkpoints: Checkpoints | None) -> None:
  if checkpoints is None:
    return
  if checkpoints.lock is not None:
    checkpoints.lock.check_owner()  # another writer took the workdir: stop before writing
  loop_state, monitored = hooks.checkpoint() if hooks.checkpoint else ({}, None)
  if at.evaluated_at != at.step:
    monitored = None  # a checkpoint is ranked only by an evaluation at its own step
  # a copy: the next dispatch donates the state's buffers while the Saver may still read them
  checkpoints.saver.save(at.step, parallel.copy(state), loop_state, monitored)
  at.last_saved = at.step


def _boundary(state, at: Position, schedule: Schedule, hooks: Hooks, checkpoints):
  """The periodic actions that fall on the step a complete dispatch ended at."""
  step, total = at.step, schedule.total
  is_eval = itstime(step, schedule.eval_every, total)
  if hooks.log is not None and (is_eval or itstime(step, schedule.log_every, total)):
    hooks.log(state, step)
  best = False
  if is_eval:
    state = _evaluate(state, at, hooks)
    best = hooks.new_best is not None and hooks.new_best(step)
  if itstime(step, schedule.checkpoint_every, total) or at.stopped_early or best:
    _save(state, at, hooks, checkpoints)
  return state


def _stop_if_asked(state, at: Position, hooks: Hooks, checkpoints, interrupts) -> None:
  """On a signal (agreed by all processes): save at this step, wait for it, raise."""
  signum = interrupts.requested() if interrupts is not None else None
  if signum is None:
    return
  if at.last_saved != at.step:
    _save(state, at, hooks, checkpoints)
  if checkpoints is not None:
    checkpoints.saver.wait()
  raise signals.Interrupted(signum, at.step)


def run(
  state,
  dispatch: Callable,
  feed: Callable[[int], Any],
  schedule: Schedule,
  hooks: Hooks,
  at: Position,
  *,
  checkpoints: Checkpoints | None = None,
  interrupts: signals.Interrupts | None = None,
):
  """Trains from step `at.step` to `schedule.total` (or an early stop); returns the state.

  A dispatch that ends short (`out['done']` below the steps asked: a per-step stop on a
  signal, or a loss that stayed non-finite, which `hooks.after_dispatch` raises on) skips the
  periodic actions of that step. The run ends evaluated and, with `checkpoints`, saved at its
  last step.

  Raises what the hooks raise, `signals.Interrupted` after a save on a signal, and
  `errors.DiskFullError` (one line naming the workdir and the last complete checkpoint) when a
  write fails on a full disk.
  """
  # Per-step dispatches ('calls' loops) also stop at the next step on a signal (one process).
  stop = None
  if interrupts is not None and jax.process_count() == 1:
    stop = lambda: interrupts.signum is not None  # noqa: E731
  try:
    while at.step < schedule.total and not at.stopped_early:
      num_steps = schedule.chunk(at.step)
      state, out = dispatch(state, feed(num_steps), num_steps, run=at.nonfinite_run, stop=stop)
      out = parallel.fetch(out)  # the one host read of the dispatch
      done = int(out["done"])
      at.step += done
      if np.ndim(out["run"]) == 0:  # a sweep's trials never stop on a non-finite loss
        at.nonfinite_run = int(out["run"])
      if hooks.after_dispatch is not None:
        hooks.after_dispatch(out, at.step)
      if done == num_steps:
        state = _boundary(state, at, schedule, hooks, checkpoints)
      if hooks.progress is not None:
        hooks.progress(done)
      _stop_if_asked(state, at, hooks, checkpoints, interrupts)
    if at.evaluated_at != at.step:
      state = _evaluate(state, at, hooks)
    if checkpoints is not None:
      if at.last_saved != at.step:
        _save(state, at, hooks, checkpoints)
      checkpoints.saver.wait()
  except Exception as e:
    if checkpoints is None or not errors.is_disk_full(e):
      raise
    raise errors.DiskFullError(
      f"no space left on the device of {checkpoints.workdir} "
      f"({intact(checkpoints.committed())}); free space or pass another --workdir"
    ) from e
  finally:
    _close(checkpoints, hooks, failing=sys.exc_info()[0] is not None)
  return state


def _close(checkpoints: Checkpoints | None, hooks: Hooks, failing: bool) -> None:
  """Closes the saver, then the caller's files; while an error is in flight, a failure to
  close (a full disk fails the flush too) is logged and the first error is the one raised."""
  closers = []
  if checkpoints is not None:
    closers.append(("the checkpoint manager", checkpoints.saver.close))
  if hooks.close is not None:
    closers.append(("the metrics files", hooks.close))
  for what, close in closers:
    try:
      close()
    except Exception:  # noqa: BLE001  (the error in flight is the one to report)
      if not failing:
        raise
      logging.warning("closing %s after an error failed too", what, exc_info=True)
