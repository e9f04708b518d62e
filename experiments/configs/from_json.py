"""A config saved as JSON (a run's config.json, a sweep's best_config.json), for research.main.

    python -m research.main --config=experiments/configs/from_json.py:DIR/best_config.json --workdir=DIR2

The JSON's values are merged into `base.get_base_config()`, so the defaults' types, placeholders
and any key the JSON lacks stay as in every other config; `--config.KEY=VALUE` overrides work.
"""  # noqa: E501  (the command stays on one line, ready to copy)

import json

import ml_collections

from experiments.configs import base


def _merge(config: ml_collections.ConfigDict, values: dict) -> None:
  for key, value in values.items():
    if (
      isinstance(value, dict)
      and key in config
      and isinstance(config[key], ml_collections.ConfigDict)
    ):
      _merge(config[key], value)
    elif isinstance(value, list):
      config[key] = tuple(value)  # JSON has no tuples; configs use them (boundaries, ...)
    else:
      config[key] = value


def get_config(path: str | None = None):
  if not path:
    raise ValueError(
      "from_json.py needs the JSON file: --config=experiments/configs/from_json.py:PATH"
    )
  with open(path) as f:
    values = json.load(f)
  config = base.get_base_config()
  _merge(config, values)
  return config
