"""Long et al. 2015: FCN-8s semantic segmentation on Oxford-IIIT Pet (3-class trimaps, 128x128).

Recipe after the paper: SGD with momentum 0.99 and a fixed small learning rate (1e-4 for
unnormalized per-pixel loss summed over an image; here the loss is a per-pixel mean, so the rate
is scaled up), weight decay 5e-4, random crop and flip applied to image and mask together;
evaluated by mean IoU. The backbone should start from a classification run of `vgg16`
(--config.init_from=WORKDIR_OF_THAT_RUN): matching layers are loaded, the rest is initialized
fresh, and the report lists both.

    python -m research.main --config=experiments/configs/fcn8s_pet.py --workdir=checkpoints/pet_fcn8s

Test-sized (CI): --config=experiments/configs/fcn8s_pet.py:test; fcn32s / fcn16s with
--config.model.name=fcn32s.
"""  # noqa: E501  (launch commands stay on one line, ready to copy)

from experiments.configs import base


def get_config(arg: str | None = None):
  _, test = base.parse_arg(arg)
  config = base.get_base_config()
  config.model.name = "fcn8s"
  config.dataset.name = "oxford_iiit_pet"
  config.dataset.augment = "segmentation"
  config.optimizer.name = "heavy_ball"
  config.optimizer.learning_rate = 0.01
  config.optimizer.beta = 0.99
  config.optimizer.weight_decay = 5e-4
  base.set_run(config, batch_size=16, steps=20_000, log_every=100, eval_every=1_000)
  config.early_stopping.metric = "mean_iou"
  config.early_stopping.patience = 5
  if test:
    config.model.width = 0.0625
    base.set_run(config, batch_size=8, steps=2, log_every=1, eval_every=2, test=True)
  return config
