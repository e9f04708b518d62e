"""A finished sweep's outputs: trials.jsonl, the leaderboard, best_config.json, sweep.png.

Every number names its split: trials are ranked by their best validation value, and only the
chosen trial (the best of the last stage) carries a test number, evaluated once after selection.
"""

import json
import math
import os

import numpy as np

from research.sweep.run import STAGE_NAMES, chosen, ranked


def _value(record, metric):
  value = record.get(f"best_validation_{metric}")
  return float("nan") if value is None or record["diverged"] else float(value)


def leaderboard(records: list[dict], metric: str, mode: str, top: int = 10) -> str:
  """The `top` trials of each stage as a text table, best validation first; the last stage
  first (the chosen trial is its rank 1, the only one with a test number)."""
  keys = list(records[0]["overrides"])
  stages = sorted({r["stage"] for r in records}, reverse=True)
  head = (
    f"{'rank':>4} {'trial':>5} {'stage':>5} {'steps':>6}  {'validation ' + metric:>19} "
    f"{'at step':>7}  {'test ' + metric:>13}  " + "  ".join(keys)
  )
  lines = []
  for stage in stages:
    group = [r for r in records if r["stage"] == stage]
    if len(stages) > 1:
      epochs = group[0].get("epochs")
      length = "" if epochs is None else f", {epochs:g} epoch{'s' if epochs != 1 else ''} each"
      lines.append(f"stage {stage} ({STAGE_NAMES.get(stage, stage)}{length}):")
    lines.append(head)
    for rank, r in enumerate(ranked(group, metric, mode)[:top], 1):
      shown = "  ".join(_format(r["overrides"][k]) for k in keys)
      value = _value(r, metric)
      text = "diverged" if math.isnan(value) else f"{value:.4f}"
      test = r.get(f"test_{metric}")
      test_text = "-" if test is None else f"{test:.4f}"
      lines.append(
        f"{rank:>4} {r['trial']:>5} {r['stage']:>5} {r.get('steps') or '-':>6}  {text:>19} "
        f"{r.get('best_step') or '-':>7}  {test_text:>13}  {shown}"
      )
  return "\n".join(lines)


def summary(best: dict, metric: str) -> str:
  """The choice in one line, each number named by its split."""
  counts = best.get("num_examples") or {}
  validation = _value(best, metric)
  text = (
    f"chosen: trial {best['trial']} {best['overrides']} by validation {metric} "
    f"{validation:.4f} (step {best.get('best_step')}"
    + (f", {counts['validation']:,} validation examples" if counts else "")
    + ")"
  )
  test = best.get(f"test_{metric}")
  if test is None:
    return text + "; every trial diverged: no test number"
  return (
    text
    + f"; test {metric} {test:.4f} ("
    + (f"{counts['test']:,} test examples, " if counts else "")
    + f"evaluated once, after selection, on the parameters of step {best.get('test_step')})"
  )


def _format(value) -> str:
  return f"{value:.4g}" if isinstance(value, float) else str(value)


def _replace(path: str, write_to) -> None:
  """Writes `path` through a temporary file of this process, then renames it: the tasks of a
  job array that finish together each write whole files, and the last rename wins."""
  tmp = f"{path}.{os.getpid()}.tmp"
  write_to(tmp)
  os.replace(tmp, path)


def _text(text: str):
  def write_to(tmp):
    with open(tmp, "w") as f:
      f.write(text)

  return write_to


def write(workdir: str, records: list[dict], dims, metric: str, mode: str) -> dict:
  """Writes trials.jsonl, best_config.json (the chosen trial's) and sweep.png; returns the
  chosen record."""
  lines = "".join(json.dumps({k: v for k, v in r.items() if k != "config"}) + "\n" for r in records)
  _replace(os.path.join(workdir, "trials.jsonl"), _text(lines))
  best = chosen(records, metric, mode)
  _replace(
    os.path.join(workdir, "best_config.json"),
    _text(json.dumps(best["config"], indent=2, sort_keys=True)),
  )
  _replace(os.path.join(workdir, "sweep.png"), lambda tmp: plot(tmp, records, dims, metric))
  return best


def plot(path: str, records: list[dict], dims, metric: str) -> None:
  """The best validation metric against each swept key on its scale (the chosen trial
  starred, with its test number); for two keys also their plane."""
  import matplotlib  # noqa: PLC0415

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  values = np.asarray([_value(r, metric) for r in records])
  panels = len(dims) + (1 if len(dims) == 2 else 0)
  fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.8), squeeze=False)
  for ax, d in zip(axes[0], dims, strict=False):
    xs = [r["overrides"][d.key] for r in records]
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)
    positions = xs if numeric else [list(d.values).index(x) for x in xs]
    for stage, marker in ((1, "o"), (2, "^")):
      pick = [i for i, r in enumerate(records) if r["stage"] == stage]
      if pick:
        ax.scatter(
          [positions[i] for i in pick],
          values[pick],
          marker=marker,
          s=22,
          label=(
            f"stage {stage} ({STAGE_NAMES[stage]})"
            if any(r["stage"] == 2 for r in records)
            else None
          ),
        )
    pick = [i for i, r in enumerate(records) if r.get("chosen")]
    if pick:
      test = records[pick[0]].get(f"test_{metric}")
      label = "chosen" + ("" if test is None else f" (test {metric} {test:.4f})")
      ax.scatter(
        [positions[pick[0]]], values[pick], marker="*", s=160, c="C3", zorder=3, label=label
      )
    if d.log:
      ax.set_xscale("log")
    if not numeric:
      ax.set_xticks(range(len(d.values)), [str(v) for v in d.values])
    ax.set_xlabel(d.key)
    ax.set_ylabel(f"best validation {metric}")
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=8)
  if len(dims) == 2:
    ax = axes[0][-1]
    a, b = dims
    points = ax.scatter(
      [r["overrides"][a.key] for r in records],
      [r["overrides"][b.key] for r in records],
      c=values,
      cmap="viridis",
      s=30,
    )
    if a.log:
      ax.set_xscale("log")
    if b.log:
      ax.set_yscale("log")
    ax.set_xlabel(a.key)
    ax.set_ylabel(b.key)
    fig.colorbar(points, ax=ax, label=f"best validation {metric}")
  fig.tight_layout()
  fig.savefig(path, dpi=110, format="png")
  plt.close(fig)
