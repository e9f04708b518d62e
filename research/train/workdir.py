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
way to mount them.
"""

import fcntl
import json
import os
import socket
import time
import uuid


class WorkdirBusyError(RuntimeError):
  """Another live run holds the workdir."""


def check_path(workdir: str) -> None:
  """Refuses object-storage URLs: the run writes config.json and metrics with POSIX file calls."""
  if "://" in workdir:
    raise ValueError(
      f"--workdir={workdir!r} is a URL; runs write through the file system: mount the bucket "
      "(e.g. `gcsfuse BUCKET /mnt/BUCKET`) and pass the mounted path"
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
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    handle = open(self.path, "a+")  # kept open for the run: closing it would drop the lock
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
