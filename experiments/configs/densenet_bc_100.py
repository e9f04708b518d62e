"""Huang et al. 2017: DenseNet-BC (L=100, k=12) on CIFAR-10 with standard augmentation.

Recipe: batch 64, 300 epochs (234,375 steps of 64 out of 50,000 images), Nesterov momentum 0.9,
weight decay 1e-4, learning rate 0.1 divided by 10 at 50% and 75% of training; pad-4 crop and
flip; per-channel standardization.

    python -m research.main --config=experiments/configs/densenet_bc_100.py --workdir=checkpoints/cifar10_densenet_bc_100

Test-sized (CI): --config=experiments/configs/densenet_bc_100.py:test
"""  # noqa: E501  (launch commands stay on one line, ready to copy)

from experiments.configs import base

STEPS = 300 * 50_000 // 64


def get_config(arg: str | None = None):
  _, test = base.parse_arg(arg)
  config = base.get_base_config()
  config.model.name = "densenet_bc_100"
  config.dataset.name = "cifar10"
  config.dataset.augment = "crop_flip"
  config.dataset.standardize = True
  config.optimizer.name = "nesterov"
  config.optimizer.learning_rate = 0.1
  config.optimizer.beta = 0.9
  config.optimizer.weight_decay = 1e-4
  config.optimizer.schedule.name = "step_decay"
  config.optimizer.schedule.boundaries = (STEPS // 2, STEPS * 3 // 4)
  config.optimizer.schedule.factor = 0.1
  base.set_run(config, batch_size=64, steps=STEPS, log_every=100, eval_every=5_000)
  if test:
    config.optimizer.schedule.boundaries = (1,)
    base.set_run(config, batch_size=8, steps=2, log_every=1, eval_every=2, test=True)
  return config
