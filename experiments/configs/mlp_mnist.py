"""A 2-hidden-layer MLP on MNIST-like 28x28 digits and clothes.

The argument picks the dataset: mnist (default) and fashion_mnist come through TFDS (downloaded
on first use); fashion_mnist_idx reads the real Fashion-MNIST IDX files installed offline by the
Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).

    python -m research.main --config=experiments/configs/mlp_mnist.py:mnist --workdir=checkpoints/mnist_mlp
    python -m research.main --config=experiments/configs/mlp_mnist.py:fashion_mnist --workdir=checkpoints/fashion_mnist_mlp
    python -m research.main --config=experiments/configs/mlp_mnist.py:fashion_mnist_idx --workdir=checkpoints/fashion_mnist_idx_mlp

Append ',test' (e.g. ':fashion_mnist_idx,test') for the tiny CI-sized variant.
"""  # noqa: E501  (launch commands stay on one line, ready to copy)

from experiments.configs import base

DATASETS = ("mnist", "fashion_mnist", "fashion_mnist_idx")


def get_config(arg: str | None = None):
  dataset, test = base.parse_arg(arg)
  dataset = dataset or "mnist"
  if dataset not in DATASETS:
    raise ValueError(f"mlp_mnist.py:{dataset} is unknown; use one of {DATASETS}")
  config = base.get_base_config()
  config.model.name = "mlp"
  config.model.depth = 2
  config.model.width = 512
  config.model.dropout_rate = 0.2
  config.dataset.name = dataset
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule.name = "cosine"
  config.optimizer.schedule.decay_steps = 9_400
  base.set_run(
    config, batch_size=128, steps=9_400, log_every=100, eval_every=940
  )  # about 20 epochs of 60,000
  config.early_stopping.patience = 4
  if test:
    config.model.width = 32
    config.optimizer.schedule.decay_steps = 4
    base.set_run(config, batch_size=16, steps=4, log_every=2, eval_every=4, test=True)
  return config
