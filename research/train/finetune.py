"""Fine-tuning: start from another run's parameters (`init_from`) and keep some fixed (`freeze`).

Paths are '/'-joined dictionary keys, e.g. 'Dense_0/kernel' or 'head/bias'.
"""

import re
from typing import NamedTuple

import jax
import numpy as np
import optax
from flax import traverse_util

from research.errors import CheckpointMismatchError, ConfigError


def path_str(path) -> str:
  """'a/b/c' from a jax key path or a tuple of names."""
  return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def flatten(tree) -> dict[str, object]:
  if not tree:
    return {}
  return {"/".join(k): v for k, v in traverse_util.flatten_dict(tree).items()}


def unflatten(flat: dict[str, object]) -> dict:
  return traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in flat.items()})


class MergeReport(NamedTuple):
  loaded: list[str]  # paths taken from the checkpoint
  reinitialized: list[str]  # head paths whose shape changed: fresh initialization kept
  fresh: list[str]  # paths absent from the checkpoint: fresh initialization kept
  unused: list[str]  # checkpoint paths the model does not have
  skipped: list[str]  # paths outside `init_layers`: fresh initialization kept

  def summary(self) -> str:
    skipped = f"; kept fresh outside init_layers {self.skipped}" if self.skipped else ""
    return (
      f"init_from: loaded {len(self.loaded)} arrays; re-initialized (new shape) "
      f"{self.reinitialized or 'none'}; not in checkpoint (fresh) {self.fresh or 'none'}; "
      f"unused from checkpoint {self.unused or 'none'}{skipped}"
    )


def merge(
  fresh: dict,
  loaded: dict,
  head_pattern: str,
  *,
  collection: str = "params",
  layers: str | None = None,
) -> tuple[dict, MergeReport]:
  """Takes each array of `loaded` into `fresh` at the same path when shapes agree.

  A shape mismatch under `head_pattern` keeps the fresh array (a new head, e.g. another
  num_classes); a shape mismatch elsewhere raises CheckpointMismatchError listing every such path.
  `layers`: a regex; only the paths it matches are taken (the notes, 001 ~106: initialize the
  first layers from a pretrained network, train the rest from scratch), None takes every path.
  """
  fresh_flat, loaded_flat = flatten(fresh), flatten(loaded)
  head = re.compile(head_pattern)
  include = re.compile(layers) if layers else None
  merged, report = dict(fresh_flat), MergeReport([], [], [], [], [])
  bad = []
  for path, value in fresh_flat.items():
    if include is not None and not include.search(path):
      report.skipped.append(path)
      continue
    if path not in loaded_flat:
      report.fresh.append(path)
      continue
    source = np.asarray(loaded_flat[path])
    if source.shape == tuple(value.shape):
      merged[path] = source.astype(value.dtype)
      report.loaded.append(path)
    elif head.search(path):
      report.reinitialized.append(path)
    else:
      bad.append(f"{collection}/{path}: checkpoint {source.shape} vs model {tuple(value.shape)}")
  report.unused.extend(p for p in loaded_flat if p not in fresh_flat)
  if bad:
    raise CheckpointMismatchError(
      "init_from: shapes differ outside the head (head pattern "
      f"{head_pattern!r}):\n  "
      + "\n  ".join(bad)
      + "\nuse a checkpoint of the same architecture, or widen "
      "config.head_pattern to re-initialize these layers"
    )
  return unflatten(merged) if merged else {}, report


def merge_variables(
  fresh: dict, loaded: dict, head_pattern: str, layers: str | None = None
) -> tuple[dict, MergeReport]:
  """`merge` for 'params' and 'batch_stats'; raises if nothing at all matched.

  `head_pattern`: the output layers' paths (`config.head_pattern`, else
  `research.models.head_pattern(model)`). `layers`: `config.init_layers`, the regex of the
  paths to load (None: all); ConfigError when it matches none of the model's paths.
  """
  if layers:
    try:
      re.compile(layers)
    except re.error as e:
      raise ConfigError(f"init_layers={layers!r} is not a valid regular expression: {e}") from e
    paths = sorted(flatten(fresh["params"]))
    if not any(re.search(layers, p) for p in paths):
      raise ConfigError(
        f"init_layers={layers!r} matches no parameter path; paths look like {paths[:6]}"
      )
  out, total = dict(fresh), MergeReport([], [], [], [], [])
  for collection in ("params", "batch_stats"):
    if collection not in fresh:
      continue
    out[collection], report = merge(
      fresh[collection],
      loaded.get(collection, {}),
      head_pattern,
      collection=collection,
      layers=layers,
    )
    for field, items in zip(total, report, strict=True):
      field.extend(f"{collection}/{p}" for p in items)
  if not total.loaded:
    raise CheckpointMismatchError(
      "init_from: no parameter path of the checkpoint matches the model; "
      f"checkpoint has {sorted(flatten(loaded.get('params', {})))[:8]}..., model "
      f"has {sorted(flatten(fresh['params']))[:8]}..."
    )
  return out, total


def freeze_labels(params, pattern: str) -> dict:
  """'frozen' for every parameter whose path matches the regex `pattern`, else 'trainable'."""
  regex = re.compile(pattern)
  return jax.tree_util.tree_map_with_path(
    lambda path, _: "frozen" if regex.search(path_str(path)) else "trainable", params
  )


def apply_freeze(
  tx: optax.GradientTransformation, params, pattern: str | None
) -> tuple[optax.GradientTransformation, list[str]]:
  """Wraps `tx` so that parameters matching `pattern` get zero updates (optax.multi_transform).

  Returns the transformation and the frozen paths; raises if the pattern matches nothing or
  everything.
  """
  if not pattern:
    return tx, []
  try:
    labels = freeze_labels(params, pattern)
  except re.error as e:
    raise ConfigError(f"freeze={pattern!r} is not a valid regular expression: {e}") from e
  flat = flatten(labels)
  frozen = sorted(p for p, label in flat.items() if label == "frozen")
  if not frozen:
    raise ConfigError(
      f"freeze={pattern!r} matches no parameter path; paths look like {sorted(flat)[:6]}"
    )
  if len(frozen) == len(flat):
    raise ConfigError(f"freeze={pattern!r} matches every parameter; nothing would train")
  return optax.multi_transform({"trainable": tx, "frozen": optax.set_to_zero()}, labels), frozen
