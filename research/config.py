"""The training config's schema: every key, its default and its type, in one place.

Imports only ml_collections: the programs load config files before JAX starts.

`defaults()` is the schema; experiments/configs/base.py starts every recipe from it, and
`complete(config)` fills in what a config built otherwise (by hand, from an older JSON) leaves
out, so the code reads `config.KEY` and never repeats a default. A locked ConfigDict rather than
a frozen dataclass tree: config files, `--config.KEY=VALUE` overrides (ml_collections'
config_flags), `config.json` in a workdir and a sweep's `best_config.json` all speak
ConfigDict already, and a ConfigDict keeps each field's type (an override of the wrong type is
refused); the model's and the rule's own arguments stay open keys of `model` and `optimizer`
(checked by the model and the rule).

Keys (every one can be overridden with --config.KEY=VALUE):
  model.name and model.<kwarg>: `research.models.create(name, num_classes=..., **kwargs)`.
  dataset.name / data_dir / augment / standardize: `research.data`.
  dataset.validation: the examples of the training split held out as the validation set, a
    count (5000) or a fraction (0.1); None (default) takes the dataset's default
    (`research.data.DATASETS[name].validation`), 0 trains on the whole training split and has
    no validation set (no periodic evaluation, no early stopping or reduce on plateau). A
    dataset with its own validation split uses it instead.
  dataset.train_split (default 'train') / test_split (default: the dataset's, e.g. 'test'):
    the stored splits trained on and reported. Evaluations during training, early stopping,
    reduce on plateau and the best checkpoint read the validation set only; the test split is
    evaluated once, at the end, on the final parameters and on the best-validation checkpoint.
  dataset.in_memory: 'auto' (default), True or False: serve a split from device memory (the
    whole split as uint8 on every local device; shuffle, augmentation and uint8 -> float run
    inside the compiled steps) or through the host pipeline (grain). 'auto' uses memory when
    this process's share fits dataset.in_memory_limit_mb (default 1024 MB per process).
  steps_per_dispatch: train steps per call of the compiled program (default 100); reduced to
    the gcd with log_every_steps, eval_every_steps and checkpoint_every_steps, so that
    dispatches end at every one of those steps. Results do not depend on it.
  loss: 'softmax_cross_entropy' or 'multiclass_svm'.
  optimizer: a `research.optim` rule (name, learning_rate, the rule's own hyperparameters),
    schedule, weight_decay (+ weight_decay_mode 'l2' | 'l1' | 'decoupled'), clip_norm,
    clip_value, skip_nonfinite, reduce_on_plateau (driven by evaluations).
    Divergence stops a run (exit code 3): a non-finite loss (with skip_nonfinite, more than
    max_skipped_steps such steps in a row, default 10), or a logged training loss above
    max_loss_factor (default 100) x max(the run's first loss, 1), or a
    non-finite evaluation.
  batch_size (global, over all devices and hosts), num_train_steps, log_every_steps,
  eval_every_steps, checkpoint_every_steps, keep_checkpoints, seed.
  init_from: another run's workdir (or checkpoint directory) to start from; head_pattern: the
    regex of the layers that may change shape (default: `research.models.head_pattern(model)`,
    from the model class's HEAD); init_layers: the regex of the parameter paths taken from
    init_from (default: every path whose shape fits), e.g. '^dense_0/' to initialize only the
    first layer from the pretrained network and train the rest from scratch.
  freeze: regex of parameter paths kept fixed ('/'-joined, e.g. '^Dense_0/').
  early_stopping: metric, mode ('max'/'min'), patience (evaluations; 0 = off), min_delta.
  num_devices: 0 = all devices; n = the first n (single process, for comparisons).
"""

import copy

import ml_collections
from ml_collections import config_dict


def defaults() -> ml_collections.ConfigDict:
  """Every key a training config has, with its default (module docstring)."""
  config = ml_collections.ConfigDict()
  config.model = ml_collections.ConfigDict({"name": "mlp"})
  config.dataset = ml_collections.ConfigDict(
    dict(
      name="digits",
      data_dir=config_dict.placeholder(str),
      train_split="train",
      test_split=config_dict.placeholder(str),
      validation=config_dict.FieldReference(None, field_type=object),
      augment=config_dict.placeholder(str),
      standardize=False,
      in_memory=config_dict.FieldReference("auto", field_type=object),
      in_memory_limit_mb=1024.0,
    )
  )
  config.loss = "softmax_cross_entropy"
  config.optimizer = ml_collections.ConfigDict(
    dict(
      name="sgd",
      learning_rate=0.1,
      schedule=ml_collections.ConfigDict(
        dict(
          name="constant",
          boundaries=(),
          factor=0.1,
          decay_rate=0.0,
          end_value=0.0,
          tau=0,
          decay_steps=0,
          warmup_steps=0,
          warmup_value=0.0,
        )
      ),
      weight_decay=0.0,
      weight_decay_mode="l2",
      clip_norm=config_dict.placeholder(float),
      clip_value=config_dict.placeholder(float),
      skip_nonfinite=False,
      max_skipped_steps=10,
      max_loss_factor=100.0,
      reduce_on_plateau=ml_collections.ConfigDict(
        dict(
          enabled=False,
          metric="loss",
          factor=0.1,
          patience=10,
          threshold=1e-4,
          cooldown=0,
          min_scale=0.0,
        )
      ),
    )
  )
  config.batch_size = 128
  config.eval_batch_size = 0  # 0: same as batch_size
  config.num_train_steps = 1000
  config.log_every_steps = 50
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  config.keep_checkpoints = 2
  config.seed = 0
  config.steps_per_dispatch = 100
  config.init_from = config_dict.placeholder(str)
  config.init_layers = config_dict.placeholder(str)
  config.head_pattern = config_dict.placeholder(str)
  config.freeze = config_dict.placeholder(str)
  config.early_stopping = ml_collections.ConfigDict(
    dict(metric="accuracy", mode="max", patience=0, min_delta=0.0)
  )
  config.num_devices = 0
  config.tensorboard = True
  config.progress_bar = True
  return config


def complete(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `config` with every key of `defaults()` it lacks added (its values kept)."""
  out = copy.deepcopy(config)
  with out.unlocked():
    _fill(out, defaults())
  return out


def _fill(node: ml_collections.ConfigDict, schema: ml_collections.ConfigDict) -> None:
  for key in schema:
    if key not in node:
      node[key] = copy.deepcopy(schema.get_ref(key) if _is_leaf(schema, key) else schema[key])
    elif isinstance(schema[key], ml_collections.ConfigDict) and isinstance(
      node[key], ml_collections.ConfigDict
    ):
      _fill(node[key], schema[key])


def _is_leaf(schema: ml_collections.ConfigDict, key: str) -> bool:
  return not isinstance(schema[key], ml_collections.ConfigDict)
