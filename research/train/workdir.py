"""One writer per run directory: an exclusive lock held for the whole run, and an owner stamp.

`lock(workdir)` takes `fcntl.flock(LOCK_EX | LOCK_NB)` on DIR/.lock and writes the holder (host,
PID, start time) into it; a second run on the same directory is refused at once with a message
naming the holder. The kernel drops the lock when the holding process dies, however it dies, so
a lock left by a killed run never blocks the next one (the stale holder text is overwritten).
Only process 0 locks: the other processes of a multi-host run write only their checkpoint shards.

Where flock does not reach (a bucket mounted with gcsfuse, or NFS without lock support, seen
from another host), the owner stamp still tells: the lock file also holds a random run id, and
before each checkpoint the run re-reads it; a second run that started anyway has overwritten
it, and the first run stops with an error naming the newcomer (`check_owner`) instead of
interleaving its checkpoints and metrics with the other's.

Workdirs are POSIX paths (local disk, NFS, a gcsfuse mount); `gs://` URLs are refused with the
way to mount them, and so are an empty path, a path that is a file and a place that cannot be
written (`check_path`, before anything is written).
"""

import fcntl
import json
import os
import socket
import time
import uuid

from research.errors import WorkdirBusyError, WorkdirError


def _existing_ancestor(path: str) -> str:
  """`path`, or the nearest of its parents that exists (what creating `path` writes into)."""
  while not os.path.lexists(path):
    parent = os.path.dirname(path)
    if parent == path:
      break
    path = parent
  return path


def check_path(workdir: str) -> None:
  """Refuses a workdir the run cannot write into, before anything is written: an empty path, an
  object-storage URL (the run writes config.json and metrics with POSIX file calls), a file, a
  directory that cannot be created or written (`os.access`: a read-only file system is refused
  even for root, whom permission bits do not stop)."""
  if not workdir.strip():
    raise WorkdirError(
      f"--workdir={workdir!r} is empty; pass the run's directory, e.g. --workdir=runs/NAME "
      "(created if absent)"
    )
  if "://" in workdir:
    raise WorkdirError(
      f"--workdir={workdir!r} is a URL; runs write through the file system: mount the bucket "
      "(e.g. `gcsfuse BUCKET /mnt/BUCKET`) and pass the mounted path"
    )
  path = os.path.abspath(os.path.expanduser(workdir))
  existing = _existing_ancestor(path)
  if not os.path.isdir(existing):
    what = "is a file" if existing == path else f"is under {existing!r}, a file"
    raise WorkdirError(
      f"--workdir={workdir!r} {what}, not a directory; pass a directory (created if absent)"
    )
  if not os.access(existing, os.W_OK | os.X_OK):
    where = "" if existing == path else f" (its parent {existing!r}, where it would be created)"
    raise WorkdirError(
      f"--workdir={workdir!r} is not writable{where}; pass a directory you can write, or "
      "fix its permissions"
    )


def check_free(workdir: str) -> None:
  """Raises WorkdirBusyError if a live run holds DIR/.lock (writes nothing: an early check)."""
  path = os.path.join(workdir, ".lock")
  if not os.path.exists(path):
    return
  with open(path) as handle:
    try:
      fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
      raise WorkdirBusyError(
        f"workdir {workdir!r} is in use by {_describe(handle.read())}; wait for that run to "
        "end (or stop it), or pass another --workdir"
      ) from None
    fcntl.flock(handle, fcntl.LOCK_UN)


class Lock:
  """The held lock of one run (see the module docstring); `release()` or process exit frees it."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, ".lock")
    self.run_id = uuid.uuid4().hex
    self._file = None

  def acquire(self) -> "Lock":
    """Creates the workdir and takes its lock: the run's first write. An OSError creating
    either (a place `check_path` could not foresee, e.g. under /proc) is a WorkdirError."""
    workdir = os.path.dirname(self.path)
    try:
      os.makedirs(workdir, exist_ok=True)
      handle = open(self.path, "a+")  # kept open for the run: closing it would drop the lock
    except OSError as e:
      raise WorkdirError(
        f"--workdir={workdir!r} cannot be created or written ({e.strerror or e}); pass a "
        "directory you can write"
      ) from e
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      handle.seek(0)
      holder = _describe(handle.read())
      handle.close()
      raise WorkdirBusyError(
        f"workdir {os.path.dirname(self.path)!r} is in use by {holder}; wait for that run to "
        "end (or stop it), or pass another --workdir"
      ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(
      json.dumps(
        {
          "host": socket.gethostname(),
          "pid": os.getpid(),
          "started": time.strftime("%Y-%m-%d %H:%M:%S"),
          "run_id": self.run_id,
        }
      )
      + "\n"
    )
    handle.flush()
    os.fsync(handle.fileno())
    self._file = handle
    return self

  def check_owner(self) -> None:
    """Raises WorkdirBusyError if another run has rewritten the owner stamp since `acquire`."""
    try:
      with open(self.path) as f:
        text = f.read()
    except FileNotFoundError:
      text = ""
    try:
      current = json.loads(text)
    except json.JSONDecodeError:
      current = {}
    if current.get("run_id") != self.run_id:
      raise WorkdirBusyError(
        f"another run took over workdir {os.path.dirname(self.path)!r} ({_describe(text)}), "
        "which the file lock could not prevent on this file system; this run stops here"
      )

  def release(self) -> None:
    if self._file is not None:
      fcntl.flock(self._file, fcntl.LOCK_UN)
      self._file.close()
      self._file = None


def _describe(text: str) -> str:
  try:
    holder = json.loads(text)
    return f"pid {holder['pid']} on {holder['host']} (started {holder['started']})"
  except (json.JSONDecodeError, KeyError, TypeError):
    return "another process"
