"""MLP on scikit-learn's real 8x8 digits: the offline default (no download), about 10 s on a CPU.

    python -m research.main --config=experiments/configs/mlp_digits.py --workdir=checkpoints/mlp_digits

Test-sized (CI): --config=experiments/configs/mlp_digits.py:test
"""  # noqa: E501  (the launch command stays on one line, ready to copy)

from experiments.configs import base


def get_config(arg: str | None = None):
  _, test = base.parse_arg(arg)
  config = base.get_base_config()
  config.model.name = 'mlp'
  config.model.depth = 2
  config.model.width = 256
  config.model.dropout_rate = 0.0
  config.dataset.name = 'digits'
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 64
  config.num_train_steps = 600
  config.log_every_steps = 50
  config.eval_every_steps = 200
  config.checkpoint_every_steps = 200
  if test:
    config.model.width = 32
    config.batch_size = 16
    config.num_train_steps = 20
    config.log_every_steps = 5
    config.eval_every_steps = 10
    config.checkpoint_every_steps = 10
    config.tensorboard = False
    config.progress_bar = False
  return config
