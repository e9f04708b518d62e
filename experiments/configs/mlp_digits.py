"""MLP on scikit-learn's real 8x8 digits: the offline default (no download), about 10 s on a CPU.

    python -m research.main --config=experiments/configs/mlp_digits.py --workdir=checkpoints/mlp_digits

Test-sized (CI): --config=experiments/configs/mlp_digits.py:test
"""  # noqa: E501  (the launch command stays on one line, ready to copy)

from experiments.configs import base


def get_config(arg: str | None = None):
  _, test = base.parse_arg(arg)
  config = base.get_base_config()
  config.model.name = "mlp"
  config.model.depth = 2
  config.model.width = 256
  config.model.dropout_rate = 0.0
  config.dataset.name = "digits"
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  base.set_run(config, batch_size=64, steps=600, log_every=50, eval_every=200)
  if test:
    config.model.width = 32
    base.set_run(config, batch_size=16, steps=20, log_every=5, eval_every=10, test=True)
  return config
