"""Where metrics go: DIR/metrics.jsonl, TensorBoard event files, a progress bar.

Only process 0 writes. `metrics.jsonl` holds one JSON object per logged step and split, e.g.
{"step": 100, "split": "validation", "accuracy": 0.97, "loss": 0.1}; the test rows, written
once at the end, also name the parameters they evaluate ("params": "final" or "best"). On
resume, lines past the restored step and the test rows are dropped first, so the file reads as
if the run had never stopped.
"""

import json
import math
import os
import time

import jax
import tensorboardX
import tqdm


def _clean(value):
  value = float(value)
  return value if math.isfinite(value) else str(value)


def truncate_jsonl(path: str, last_step: int, drop_splits: tuple[str, ...] = ("test",)) -> None:
  """Keeps only the lines of `path` with step <= last_step and a split not in `drop_splits`
  (the end-of-run test rows, written again when the run ends); drops a torn last line."""
  if not os.path.exists(path):
    return
  kept = []
  with open(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue
      if record.get("step", 0) <= last_step and record.get("split") not in drop_splits:
        kept.append(json.dumps(record))
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write("".join(k + "\n" for k in kept))
  os.replace(tmp, path)


def read_jsonl(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


class MetricWriter:
  """Writes scalars to metrics.jsonl and TensorBoard (process 0 only).

  Args:
    workdir: the run directory.
    tensorboard: write event files under DIR/tensorboard/<split> (tensorboardX: no TensorFlow).
    start_step: the step training resumes from; later lines of metrics.jsonl are dropped.
  """

  def __init__(self, workdir: str, *, tensorboard: bool = True, start_step: int = 0):
    self.enabled = jax.process_index() == 0
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb_dir = os.path.join(workdir, "tensorboard")
    self._tensorboard = tensorboard and self.enabled
    self._writers = {}
    if self.enabled:
      os.makedirs(workdir, exist_ok=True)
      truncate_jsonl(self.path, start_step)
      self._file = open(self.path, "a")  # closed in close()

  def _tb_writer(self, split: str):
    if split not in self._writers:
      self._writers[split] = tensorboardX.SummaryWriter(os.path.join(self._tb_dir, split))
    return self._writers[split]

  def write(self, step: int, split: str, metrics: dict, *, board: str | None = None, **labels):
    """One line {"step", "split", **labels, **metrics}; `labels` (e.g. trial=3) are written
    as given, and only to metrics.jsonl. TensorBoard gets the metrics under the run `board`
    (default: `split`; the test of the best checkpoint is 'test_best')."""
    if not self.enabled:
      return
    cleaned = {k: _clean(v) for k, v in metrics.items()}
    record = {"step": int(step), "split": split, **labels, **cleaned}
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()
    if self._tensorboard:
      writer = self._tb_writer(board or split)
      for key, value in metrics.items():
        writer.add_scalar(key, float(value), global_step=int(step))

  def close(self) -> None:
    if not self.enabled:
      return
    self._file.close()
    for writer in self._writers.values():
      writer.flush()
      writer.close()


class Progress:
  """A tqdm bar over steps (steps/s and ETA) on process 0, with the latest metrics."""

  def __init__(self, total: int, start: int, enabled: bool = True):
    self.start_time, self.start_step = time.perf_counter(), start
    self.bar = tqdm.tqdm(
      total=total,
      initial=start,
      unit="step",
      dynamic_ncols=True,
      disable=not enabled or jax.process_index() != 0,
      smoothing=0.1,
    )

  def update(self, n: int = 1, **postfix) -> None:
    self.bar.update(n)
    if postfix:
      self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)

  def steps_per_second(self, step: int) -> float:
    elapsed = time.perf_counter() - self.start_time
    return (step - self.start_step) / elapsed if elapsed > 0 else 0.0

  def close(self) -> None:
    self.bar.close()
