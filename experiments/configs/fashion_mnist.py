"""Fashion-MNIST recipes beside their published numbers (issue 22, "the lecture at real scale").

Every recipe trains on the whole 60,000-image training split (`dataset.validation=0`) for a
fixed number of steps and reports the test accuracy of the final parameters, as the published
runs do. `python -m experiments.results` trains them, 3 seeds each, and writes the table
(docs/results.md). The networks and what they are compared with:

  mlp          MLP 784-256-128-100-10, ReLU, Adam 1e-3 (cosine to 0), batch 128, 14,100 steps
               (30 epochs), no augmentation. Benchmark table of zalandoresearch/fashion-mnist:
               "MLP 256-128-100, None, 0.8833".
  cnn2         conv 3x3x32 -> pool -> conv 3x3x64 -> pool -> FC 32 -> head (92,906 parameters),
               Adam 1e-3 (cosine), batch 128, 1,200 steps (2.6 epochs: what 3 seeds of it cost
               in about 10 minutes on 2 CPU cores), no augmentation. Benchmark: "2 Conv <100K
               parameters, None, 0.925".
  cnn2_bn_aug  conv 3x3x32 -> BN -> pool -> conv 3x3x64 -> BN -> pool -> FC 192 -> BN -> FC 128
               -> BN -> head, dropout 0.3 after the hidden FC layers (487,786 parameters),
               4-pixel pad + random crop + horizontal flip, Adam 1e-3 (cosine), batch 128, 900
               steps (1.9 epochs, CPU-sized as cnn2). Benchmark: "2 Conv+3 FC ~500K parameters,
               Augmentation, batch normalization, 0.934".
  resnet20     Zhong et al. 2020 (Random Erasing), fashionmnist.py baseline: ResNet-20 (option-A
               shortcuts, 16/32/64 filters on 28/14/7 maps, 269,434 parameters), SGD lr 0.1,
               momentum 0.9, weight decay 5e-4, batch 128, 300 epochs (140,700 steps), lr / 10 at
               epochs 150 and 225, 4-pixel pad + random crop + horizontal flip, standardized
               inputs. Published error 4.39% (0.9561 accuracy). An accelerator's schedule: about
               30 hours on 2 CPU cores (0.75 s a step).
  resnet20_cpu the same recipe with the schedule shrunk to what 2 CPU cores give 3 seeds in
               about 15 minutes: 300 steps (0.64 epoch), lr / 10 at 50% and 75% of them.

The CPU schedules (mlp, cnn2, cnn2_bn_aug, resnet20_cpu) are sized so that
`python -m experiments.results` trains all four, 3 seeds each, in about 35 minutes on a 2-core
CPU; they are far shorter than the published runs, which is most of the gap in its table.
Pooling is AlexNet's overlapping 3x3 stride-2 max pooling (the `alexnet` model with two conv
layers); the three small nets' hyperparameters are ours (the submitters' notebooks give
Keras/PyTorch code, not a recipe we copy).

    python -m research.main --config=experiments/configs/fashion_mnist.py:mlp --workdir=checkpoints/fashion_mnist_mlp
    python -m research.main --config=experiments/configs/fashion_mnist.py:resnet20 --workdir=checkpoints/fashion_mnist_resnet20

Append ',test' (e.g. ':cnn2,test') for the tiny CI-sized variant. The data are the real IDX
files of Debian's dataset-fashion-mnist (`fashion_mnist_idx`); to read TFDS's copy instead add
`--config.dataset.name=fashion_mnist` (downloaded on first use).
"""  # noqa: E501  (launch commands stay on one line, ready to copy)

from experiments.configs import base

NETWORKS = ("mlp", "cnn2", "cnn2_bn_aug", "resnet20", "resnet20_cpu")
TRAIN_EXAMPLES = 60_000
STEPS_PER_EPOCH = -(-TRAIN_EXAMPLES // 128)  # 469 batches of 128 (the last one wraps around)


def steps_for(epochs: float) -> int:
  """`epochs` passes of batch 128 over 60,000 examples, rounded to a multiple of 100 steps.

  A multiple of 100 keeps 100 steps per dispatch (`steps_per_dispatch` is cut to its gcd with
  the log, evaluation and checkpoint intervals): 300 epochs are 140,700 steps exactly.
  """
  return max(100, int(round(epochs * STEPS_PER_EPOCH / 100)) * 100)


# Each recipe's steps at the default size (see the module docstring).
STEPS = {
  "mlp": steps_for(30),
  "cnn2": 1_200,
  "cnn2_bn_aug": 900,
  "resnet20": steps_for(300),
  "resnet20_cpu": 300,
}


def _small_cnn(config, conv_features, conv_kernels, fc_features, norm, dropout_rate):
  """The `alexnet` model cut to two conv layers (each followed by 3x3/2 max pooling)."""
  config.model.name = "alexnet"
  config.model.conv_features = conv_features
  config.model.conv_kernels = conv_kernels
  config.model.conv_groups = (1, 1)
  config.model.conv1_stride = 1
  config.model.conv1_padding = "SAME"
  config.model.pool_after = (0, 1)
  config.model.fc_features = fc_features
  config.model.use_lrn = False
  config.model.dropout_rate = dropout_rate
  config.model.kernel_init = "he_normal"
  config.model.paper_biases = False
  config.model.norm = norm


def get_config(arg: str | None = None):
  network, test = base.parse_arg(arg)
  network = network or "mlp"
  if network not in NETWORKS:
    raise ValueError(f"fashion_mnist.py:{network} is unknown; use one of {NETWORKS}")
  config = base.get_base_config()
  config.dataset.name = "fashion_mnist_idx"
  config.dataset.validation = 0  # the whole training split, a fixed length, the final model
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule.name = "cosine"
  if network == "mlp":
    config.model.name = "mlp"
    config.model.widths = (256, 128, 100)
  elif network == "cnn2":
    _small_cnn(config, (32, 64), (3, 3), (32,), "none", 0.0)
  elif network == "cnn2_bn_aug":
    _small_cnn(config, (32, 64), (3, 3), (192, 128), "batch", 0.3)
    config.dataset.augment = "crop_flip"
  else:  # resnet20, resnet20_cpu
    config.model.name = "resnet20"
    config.dataset.augment = "crop_flip"
    config.dataset.standardize = True
    config.optimizer.name = "heavy_ball"
    config.optimizer.learning_rate = 0.1
    config.optimizer.beta = 0.9
    config.optimizer.weight_decay = 5e-4
    config.optimizer.schedule.name = "step_decay"
    config.optimizer.schedule.factor = 0.1
  steps = STEPS[network]
  if test:
    steps = 4
  if config.optimizer.schedule.name == "cosine":
    config.optimizer.schedule.decay_steps = steps
  else:  # lr / 10 at epochs 150 and 225 of 300: at 50% and 75% of the run
    config.optimizer.schedule.boundaries = (steps // 2, steps * 3 // 4)
  base.set_run(config, batch_size=128, steps=steps, log_every=100, eval_every=steps)
  if test:
    if config.model.name == "mlp":
      config.model.widths = (16, 8, 4)
    elif config.model.name == "alexnet":
      config.model.width = 1 / 8  # 4 and 8 filters; 24 and 16 dense units
    base.set_run(config, batch_size=16, steps=steps, log_every=2, eval_every=4, test=True)
  return config
