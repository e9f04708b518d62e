"""He et al. 2016 (Sec. 4.2): ResNet-20/32/44/56/110 and the plain nets on CIFAR-10.

Recipe: batch 128, SGD with momentum 0.9, weight decay 1e-4, learning rate 0.1 divided by 10 at
32k and 48k steps, 64k steps; 4-pixel pad + random 32x32 crop + horizontal flip; per-channel
standardization. ResNet-110 first trains at 0.01 until training error is below 80% (about 400
steps), then goes back to 0.1. Pick the network with the config argument:

    python -m research.main --config=experiments/configs/cifar10_resnet.py:resnet56 --workdir=checkpoints/cifar10_resnet56
    python -m research.main --config=experiments/configs/cifar10_resnet.py:plain20 --workdir=checkpoints/cifar10_plain20

Networks: resnet20, resnet32, resnet44, resnet56, resnet110, plain20, plain32, plain44, plain56,
plain110. Append ',test' (e.g. ':resnet20,test') for the tiny CI-sized variant.
"""  # noqa: E501  (launch commands stay on one line, ready to copy)

from experiments.configs import base

NETWORKS = tuple(
  f"{kind}{depth}" for kind in ("resnet", "plain") for depth in (20, 32, 44, 56, 110)
)


def get_config(arg: str | None = None):
  network, test = base.parse_arg(arg)
  network = network or "resnet20"
  if network not in NETWORKS:
    raise ValueError(f"cifar10_resnet.py:{network} is unknown; use one of {NETWORKS}")
  config = base.get_base_config()
  config.model.name = network
  config.dataset.name = "cifar10"
  config.dataset.augment = "crop_flip"
  config.dataset.standardize = True
  config.optimizer.name = "heavy_ball"
  config.optimizer.learning_rate = 0.1
  config.optimizer.beta = 0.9
  config.optimizer.weight_decay = 1e-4
  config.optimizer.schedule.name = "step_decay"
  config.optimizer.schedule.boundaries = (32_000, 48_000)
  config.optimizer.schedule.factor = 0.1
  if network.endswith("110"):
    config.optimizer.schedule.warmup_steps = 400
    config.optimizer.schedule.warmup_value = 0.01
  base.set_run(config, batch_size=128, steps=64_000, log_every=100, eval_every=2_000)
  if test:
    config.model.name = "resnet20" if network.startswith("resnet") else "plain20"
    config.optimizer.schedule.boundaries = (2, 3)
    base.set_run(config, batch_size=16, steps=4, log_every=2, eval_every=4, test=True)
  return config
