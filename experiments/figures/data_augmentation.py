"""The lecture's data augmentations on a real photo, and their effect on validation accuracy.

(a) AlexNet's and the lecture's augmentations from `research.data.augment`, applied to a real
RGB photograph (scikit-learn's bundled sample image 'china.jpg', downscaled): random crops
(AlexNet: 224 of 256; here the same 7/8 ratio), horizontal flips, PCA colour noise
(I += [P1 P2 P3][a1 l1, a2 l2, a3 l3]^T, a ~ N(0, 0.1^2), eigenpairs of the photo's pixels; a
second row with a ~ N(0, 0.5^2) to make the direction visible), rotations and stretches, random
erasing, Gaussian noise.
(b) The same small CNN (`problems.SmallCNN`, the 4-layer net of `relu_vs_tanh_cnn`) trained on a
small subset of the real digits (or Fashion-MNIST) with and without label-preserving
augmentation: pad-1 random crops (shifts) and rotations/stretches (no flips: a mirrored digit is
another symbol; flips and random erasing are added for Fashion-MNIST). Splits
(`_fit.load_data`): the training subset is drawn from the training split less its validation
set (held out by `research.data.holdout`); the curves are training and validation accuracy; each
run keeps its best-validation parameters (early stopping's choice) and the test split is
evaluated once on them. Checks: augmentation's final validation accuracy higher than without,
and the test accuracy of the parameters chosen on validation higher too (means over seeds).
"""

from __future__ import annotations

import functools
import pathlib

import jax
import ml_collections
import numpy as np
from sklearn.datasets import load_sample_image

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check_greater
from experiments.figures.problems import SmallCNN
from research import optim
from research.data import augment
from research.data.datasets import stats_of_images

NAME = "data_augmentation"
TITLE = "Data augmentation: crops, flips, PCA colour, rotation, erasing; effect on accuracy"
CAPTION = (
  "Top: AlexNet's and the lecture's augmentations applied to a real photograph. Bottom: a "
  "small CNN trained on a small subset of real images, with and without label-preserving "
  "augmentation: with it the training accuracy is lower (the task is harder) and the "
  "validation accuracy higher (less overfitting)."
)
PAPER = common.Paper(
  source='Krizhevsky et al. 2012, Sect. 4.1; Zhong et al. 2020, "Random Erasing", Table 1',
  setup=(
    "ImageNet, AlexNet (crops, flips, PCA colour); Fashion-MNIST, ResNet-20 (pad-4 crop and flip,"
    " random erasing)"
  ),
  number=(
    "PCA colour noise lowers AlexNet top-1 error by over 1%, and without crops and flips the net "
    "overfits badly; random erasing lowers ResNet-20 error on Fashion-MNIST from 4.39% to 4.02%"
  ),
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "digits"
  config.max_train = 150
  config.max_val = None
  config.width = 16
  config.batch_size = 64
  config.steps = 1000
  config.eval_every = 100
  config.learning_rate = 3e-3
  config.seeds = (0, 1)
  config.photo_size = 128  # short side of the photo in the picture
  config.num_samples = 4
  return common.sized(
    size,
    config,
    test={
      "steps": 20,
      "eval_every": 10,
      "seeds": (0,),
      "width": 4,
      "photo_size": 32,
      "num_samples": 2,
    },
    full={
      "dataset": "fashion_mnist_idx",
      "max_train": 1000,
      "max_val": 10_000,
      "steps": 3000,
      "seeds": (0, 1, 2),
    },
  )


def photo(short_side: int) -> np.ndarray:
  """scikit-learn's 'china.jpg' (a real 427x640 photo), resized: (short, long, 3) in [0, 1]."""
  image = load_sample_image("china.jpg").astype(np.float32) / 255.0
  h, w = image.shape[:2]
  size = (short_side, int(round(w * short_side / h)), 3)
  return np.asarray(jax.image.resize(image, size, "linear"))


def augmented_examples(image: np.ndarray, num: int, seed: int = 0) -> dict[str, np.ndarray]:
  """Each augmentation `num` times on `image` (H, W, 3): name -> (num, h, w, 3) in [0, 1]."""
  stats = stats_of_images([np.round(image * 255).astype(np.uint8)])
  vals, vecs = stats.eigenvalues, stats.eigenvectors
  crop = int(round(image.shape[0] * 7 / 8))
  ops = {
    f"random crop {crop}x{crop}": lambda k, x: augment.random_crop(k, x, crop),
    "horizontal flip (p=1/2)": augment.random_flip,
    "PCA colour, a ~ N(0, 0.1²)": lambda k, x: augment.pca_colour_noise(k, x, vals, vecs, 0.1),
    "PCA colour, a ~ N(0, 0.5²)": lambda k, x: augment.pca_colour_noise(k, x, vals, vecs, 0.5),
    "rotate ±15°, stretch ±10%": lambda k, x: augment.rotate_and_stretch(k, x, 15.0, 0.1),
    "random erasing": lambda k, x: augment.random_erasing(k, x, probability=1.0, value=0.5),
    "Gaussian noise σ=0.05": lambda k, x: augment.gaussian_noise(k, x, 0.05),
  }
  keys = jax.random.split(jax.random.PRNGKey(seed), num)
  return {
    name: np.clip(np.asarray(jax.vmap(op, in_axes=(0, None))(keys, image)), 0, 1)
    for name, op in ops.items()
  }


@functools.lru_cache
def batch_augment(flips: bool):
  """augment(key, image, label): shift by <= 1 pixel, rotate/stretch (+ erase, flip)."""

  def one(key, image, label):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    image = augment.pad_and_crop(k1, image, 1)
    image = augment.rotate_and_stretch(k2, image, 10.0, 0.1)
    if not flips:  # digits: 8x8 images, where one erased patch hides much of the symbol
      return image, label
    image = augment.random_erasing(k3, image, probability=0.5, area_range=(0.02, 0.15))
    return augment.random_flip(k4, image), label

  return one


def run(config: ml_collections.ConfigDict) -> FigureResult:
  examples = augmented_examples(photo(config.photo_size), config.num_samples)
  curves = {"without": [], "with": []}
  name = None
  for seed in config.seeds:
    name, train, val, test = _fit.load_data(
      config.dataset, max_train=config.max_train, max_val=config.max_val, seed=seed
    )
    model = SmallCNN(int(train[1].max()) + 1, "relu", config.width)
    for label, aug in (("without", None), ("with", batch_augment(flips=name != "digits"))):
      out = _fit.fit_config(
        config,
        model,
        optim.adam(config.learning_rate),
        train,
        val,
        test=test,
        seed=seed,
        augment=aug,
      )
      curves[label].append(
        {
          "train_accuracy": out.train_accuracy.tolist(),
          "val_accuracy": out.val_accuracy.tolist(),
          "chosen_step": int(out.eval_steps[out.best_index]),  # best validation accuracy
          "test_accuracy": out.test["accuracy"],  # of the parameters at chosen_step
        }
      )
  final = {k: float(np.mean([c["val_accuracy"][-1] for c in v])) for k, v in curves.items()}
  test_acc = {k: float(np.mean([c["test_accuracy"] for c in v])) for k, v in curves.items()}
  gap = {
    k: float(np.mean([c["train_accuracy"][-1] - c["val_accuracy"][-1] for c in v]))
    for k, v in curves.items()
  }
  checks = [
    check_greater(
      f"final validation accuracy with - without augmentation ({name}, "
      f"{config.max_train} training images, mean of {len(config.seeds)} seeds)",
      final["with"] - final["without"],
      0.0,
    ),
    check_greater(
      "test accuracy with - without augmentation, each run's parameters chosen on validation "
      f"(mean of {len(config.seeds)} seeds)",
      test_acc["with"] - test_acc["without"],
      0.0,
    ),
  ]
  data = {
    "dataset": name,
    "train_size": config.max_train,
    "steps": out.eval_steps.tolist(),
    "curves": curves,
    "final_val_accuracy": final,
    "test_accuracy": test_acc,  # of the best-validation parameters, mean over seeds
    "train_val_gap": gap,
    "examples": {k: v.tolist() for k, v in examples.items()},
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  data = result.data
  names = list(data["examples"])
  num = len(data["examples"][names[0]])
  fig = common.figure((2.0 * num + 2.5, 1.45 * len(names) + 3.6))
  grid = fig.add_gridspec(len(names) + 2, num + 1, width_ratios=(0.9,) + (1,) * num)
  for i, op in enumerate(names):
    label = fig.add_subplot(grid[i, 0])
    label.text(1, 0.5, op, ha="right", va="center", fontsize=8)
    label.axis("off")
    for j in range(num):
      ax = fig.add_subplot(grid[i, j + 1])
      ax.imshow(np.asarray(data["examples"][op][j]))
      ax.axis("off")
  ax = fig.add_subplot(grid[len(names) :, :])
  for key, color in (("without", "tab:red"), ("with", "tab:blue")):
    for i, c in enumerate(data["curves"][key]):
      ax.plot(
        data["steps"],
        c["val_accuracy"],
        color=color,
        lw=1.8,
        label=(
          f"validation, {key} augmentation (final mean {data['final_val_accuracy'][key]:.3f}; "
          f"test {data['test_accuracy'][key]:.3f} at the best validation step)"
        )
        if i == 0
        else None,
      )
      ax.plot(
        data["steps"],
        c["train_accuracy"],
        color=color,
        lw=0.9,
        ls="--",
        label=f"training, {key} augmentation" if i == 0 else None,
      )
  ax.set_xlabel("training step")
  ax.set_ylabel("accuracy")
  ax.set_ylim(0.0, 1.02)
  ax.set_title(f"small CNN on {data['train_size']} {data['dataset']} training images", fontsize=9)
  ax.legend(fontsize=8, loc="lower right")
  return [common.save_figure(fig, out_dir, NAME)]
