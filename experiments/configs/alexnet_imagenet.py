"""Krizhevsky et al. 2012: AlexNet on ImageNet (ILSVRC-2012), the paper's recipe.

Recipe: batch 128, SGD with momentum 0.9, weight decay 5e-4, learning rate 0.01 divided by 10
when the validation error stops improving (here reduce-on-plateau on validation accuracy, checked
every epoch of 9,930 steps), about 90 epochs; random 224 crops of 256x256 images, flips, PCA
colour augmentation; mean subtraction; dropout 0.5 in the first two dense layers. ImageNet must be
downloaded by hand into the TFDS manual directory (see research.data).
Splits (research.data's ImageNet spec): the validation set the plateau watches is 10,000 training
images held out of the 1.28M; ILSVRC's own 'validation' split (its labels are public, the test
split's are not) is the test split, evaluated once at the end.

    python -m research.main --config=experiments/configs/alexnet_imagenet.py --workdir=checkpoints/imagenet_alexnet

Test-sized (CI): --config=experiments/configs/alexnet_imagenet.py:test
"""  # noqa: E501  (launch commands stay on one line, ready to copy)

from experiments.configs import base

# ILSVRC-2012's 1,281,167 training images less the 10,000 held out for validation
# (research.data's ImageNet default), in whole batches of 128
TRAIN_EXAMPLES = 1_281_167 - 10_000
STEPS_PER_EPOCH = TRAIN_EXAMPLES // 128


def get_config(arg: str | None = None):
  _, test = base.parse_arg(arg)
  config = base.get_base_config()
  config.model.name = "alexnet"
  config.dataset.name = "imagenet2012"
  config.dataset.augment = "alexnet"
  config.dataset.standardize = True
  config.optimizer.name = "heavy_ball"
  config.optimizer.learning_rate = 0.01
  config.optimizer.beta = 0.9
  config.optimizer.weight_decay = 5e-4
  config.optimizer.reduce_on_plateau.enabled = True
  config.optimizer.reduce_on_plateau.metric = "accuracy"
  config.optimizer.reduce_on_plateau.factor = 0.1
  config.optimizer.reduce_on_plateau.patience = 2
  config.optimizer.reduce_on_plateau.threshold = 1e-3
  base.set_run(
    config, batch_size=128, steps=90 * STEPS_PER_EPOCH, log_every=100, eval_every=STEPS_PER_EPOCH
  )
  if test:
    config.model.width = 0.125
    base.set_run(config, batch_size=8, steps=2, log_every=1, eval_every=2, test=True)
  return config
