"""SIGTERM and SIGINT, the one module that handles them: before training, and during it.

Before training (imports, checks, compilation) there is nothing to save: `install_startup`
(called by the programs before any work) makes either signal print one line and exit at once
with 128 + its number. During training they are requests to stop at the next dispatch
boundary, agreed by all processes (`Interrupts`, which the training driver enters):

TPU VM maintenance, spot and preemptible VMs and Slurm's `--signal` send SIGTERM some time
before they kill a job; Ctrl-C sends SIGINT. Inside `Interrupts` the first of either only sets a
flag; the loop finishes the running dispatch, saves a checkpoint at that step, waits until it is
on disk and raises `Interrupted`, which `research.main` turns into one line and exit code
128 + the signal's number (143 for SIGTERM, 130 for SIGINT: what a shell reports for a process
killed by it). A second signal while that happens exits at once (`os._exit`, same code): the
checkpoint being written is in a temporary directory that only a complete save renames, so
nothing is corrupted and the previous checkpoint stays.

Several processes: a signal may reach only some of them, or reach them during different
dispatches. At every dispatch boundary the processes exchange their flags
(`multihost_utils.process_allgather`, a few bytes), so all stop after the same step and save one
consistent checkpoint. (JAX's own preemption sync point needs its coordination service's
preemption notifier; an allgather works on every launcher.)
"""

import os
import signal
import threading

import numpy as np

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(Exception):  # noqa: N818  (not an error: the run stopped as asked)
  """The run stopped at `step` on `signal_name` after saving a checkpoint there."""

  def __init__(self, signum: int, step: int):
    self.signum, self.step = signum, step
    self.signal_name = signal.Signals(signum).name
    self.exit_code = 128 + signum
    super().__init__(
      f"interrupted by {self.signal_name} at step {step}; checkpoint saved; run "
      "the same command to resume"
    )


class Interrupts:
  """Context manager: installs the handlers (main thread only) and restores the previous ones."""

  def __init__(self):
    self.signum: int | None = None
    self._previous = {}

  def __enter__(self) -> "Interrupts":
    if threading.current_thread() is threading.main_thread():
      for signum in SIGNALS:
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous.clear()

  def _handle(self, signum, frame) -> None:
    del frame
    if self.signum is not None:  # the second signal: stop now, the save is atomic
      os._exit(128 + signum)
    self.signum = signum

  def requested(self) -> int | None:
    """The signal number if any process got one (a collective with several processes)."""
    import jax  # noqa: PLC0415  (imported by the programs after start-up, not here)
    from jax.experimental import multihost_utils  # noqa: PLC0415

    local = 0 if self.signum is None else self.signum
    if jax.process_count() == 1:
      return local or None
    flags = multihost_utils.process_allgather(np.int32(local))
    signals = [int(s) for s in np.ravel(flags) if s]
    if signals and self.signum is None:
      self.signum = signals[0]  # so that a later signal here exits at once
    return signals[0] if signals else None


def _stop_before_training(signum, frame) -> None:
  """SIGTERM / SIGINT while starting up (imports, checks, compilation): nothing to save yet.

  Exits at once (an exception raised here could land in a callback that swallows it); the
  training driver installs `Interrupts` once it runs."""
  del frame
  name = signal.Signals(signum).name
  print(
    f"interrupted by {name} before training started; nothing to save; run the same "
    "command to start",
    flush=True,
  )
  os._exit(128 + signum)


def install_startup() -> None:
  """Either signal, from now until training starts: one line, exit 128 + its number."""
  for signum in SIGNALS:
    signal.signal(signum, _stop_before_training)
