"""The lecture's data augmentations on a real photo, and their effect on overfitting.

(a) AlexNet's and the lecture's augmentations from `research.data.augment`, applied to a real
RGB photograph (scikit-learn's bundled sample image 'china.jpg', downscaled): random crops
(AlexNet: 224 of 256; here the same 7/8 ratio), horizontal flips, PCA colour noise
(I += [P1 P2 P3][a1 l1, a2 l2, a3 l3]^T, a ~ N(0, 0.1^2), eigenpairs of the photo's pixels; a
second row with a ~ N(0, 0.5^2) to make the direction visible), rotations and stretches, random
erasing, Gaussian noise.
(b) A small AlexNet-family CNN (`research.models.create('alexnet', ...)` cut to two conv
layers, as the `cnn2` recipe of `experiments/configs/fashion_mnist.py`: conv 3x3x16 - 3x3/2
overlapping max pool - conv 3x3x32 - pool - FC 64 - head, 79,242 parameters, Adam) trained on
Fashion-MNIST with and without AlexNet's two label-preserving augmentations, random shifts
(zero-pad `shift` pixels, crop back to 28 x 28) and horizontal flips (no flips on the digits
fallback: a mirrored digit is another symbol). Splits (`_fit.load_data`): the training images
are drawn from the training split less its 5,000 validation images (held out by
`research.data.holdout`); the curves are training and validation accuracy; each run keeps its
best-validation parameters (early stopping's choice) and the full test split (10,000) is
evaluated once on them.
(c) Test-time augmentation (notes 000 ~459, AlexNet): the augmentation-trained network's test
predictions from the average of the softmax over ten views of each test image (the four corner
28 x 28 windows of the image padded by `shift`, i.e. the image shifted by (+-shift, +-shift), the
centre window, which is the image itself, and the mirror images of the five;
`augment.ten_crop_batch`, `augment.average_crop_predictions`) against the centre view alone,
both on the run's final parameters.

Why a subset of 500 training images, not all 55,000: augmentation is a regularizer, and what it
counters, overfitting, appears after many passes over the training images (the papers train 90
to 300 epochs). The CPU budget buys about a thousand steps of batch 64: 128 epochs of 500
images, or 1.2 epochs of 55,000, where there is no overfitting to counter. At that full size
(2026-12-05, the previous small CNN, 1,000 steps, seeds 0 and 1) augmentation lowered the test
accuracy of the best-validation parameters from 0.755 to 0.723 and the train - validation gap
stayed at 0.02-0.03 either way. Reductions from the papers: two conv layers instead of AlexNet's
five or ResNet-20, 500 training images, 1,000 steps, shifts and flips only (rotation, stretch
and erasing slowed learning within these steps), one seed.

Checks: augmentation lowers the train - validation accuracy gap at the last evaluation and
raises the test accuracy of the parameters chosen on validation; averaging the ten test views
raises the test accuracy over the centre view (means over seeds).
"""

from __future__ import annotations

import functools
import pathlib

import jax
import ml_collections
import numpy as np
from sklearn.datasets import load_sample_image

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check_greater, check_less
from research import optim
from research.data import augment
from research.data.datasets import stats_of_images
from research.models import create

NAME = "data_augmentation"
TITLE = "Data augmentation: crops, flips, PCA colour, rotation, erasing; effect on overfitting"
CAPTION = (
  "Top: AlexNet's and the lecture's augmentations applied to a real photograph. Bottom: a "
  "small AlexNet-family CNN trained on 500 Fashion-MNIST images, with and without random "
  "shifts and flips: with them the training accuracy is lower (the task is harder), the gap to "
  "the validation accuracy smaller (less overfitting) and the test accuracy of the "
  "best-validation parameters higher; averaging the softmax of ten shifted and mirrored views "
  "of each test image (AlexNet's test-time ten crops) is compared with the image alone."
)
PAPER = common.Paper(
  source='Krizhevsky et al. 2012, Sect. 4.1; Zhong et al. 2020, "Random Erasing", Table 1',
  setup=(
    "ImageNet, AlexNet (crops, flips, PCA colour; ten test crops averaged); Fashion-MNIST, "
    "ResNet-20 (pad-4 crop and flip, random erasing)"
  ),
  number=(
    "without crops and flips AlexNet overfits substantially; PCA colour noise lowers its top-1 "
    "error by over 1%; at test time it averages the softmax of ten 224 x 224 patches (four "
    "corners, centre, and their mirror images; no separate number); random erasing lowers "
    "ResNet-20 error on Fashion-MNIST from 4.39% to 4.02%"
  ),
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist_idx"
  config.max_train = 500  # a subset: 128 epochs in the CPU budget (module docstring)
  config.max_val = None
  config.max_test = None
  config.conv_features = (16, 32)
  config.fc_features = (64,)
  config.batch_size = 64
  config.steps = 1000
  config.eval_every = 500
  config.learning_rate = 1e-3
  config.seeds = (0,)
  config.shift = 2  # pixels: the training shifts, and the ten test views' offsets
  config.photo_size = 128  # short side of the photo in the picture
  config.num_samples = 4
  return common.sized(
    size,
    config,
    test={
      "max_train": 200,
      "max_val": 500,
      "max_test": 500,
      "conv_features": (4, 8),
      "fc_features": (8,),
      "steps": 20,
      "eval_every": 10,
      "photo_size": 32,
      "num_samples": 2,
    },
    full={"max_train": 1000, "steps": 3000, "eval_every": 100, "seeds": (0, 1, 2)},
  )


def small_cnn(config, num_classes: int):
  """The `alexnet` model cut to two 3x3 conv layers, each followed by 3x3/2 max pooling."""
  return create(
    "alexnet",
    num_classes=num_classes,
    conv_features=tuple(config.conv_features),
    conv_kernels=(3, 3),
    conv_groups=(1, 1),
    conv1_stride=1,
    conv1_padding="SAME",
    pool_after=(0, 1),
    fc_features=tuple(config.fc_features),
    use_lrn=False,
    dropout_rate=0.0,
    kernel_init="he_normal",
    paper_biases=False,
    norm="none",
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
def batch_augment(flips: bool, shift: int):
  """augment(key, image, label): a random shift by <= `shift` pixels (zero padding), then a
  horizontal flip with probability 1/2 when `flips`."""

  def one(key, image, label):
    shift_key, flip_key = jax.random.split(key)
    image = augment.pad_and_crop(shift_key, image, shift)
    return (augment.random_flip(flip_key, image) if flips else image), label

  return one


def ten_views(images: np.ndarray, shift: int, flips: bool) -> np.ndarray:
  """AlexNet's ten test views of each image at the training shifts: (N, H, W, C) ->
  (N * V, H, W, C), each image's views consecutive.

  The images are zero-padded by `shift` pixels per side and `augment.ten_crop_batch` takes the
  four corner H x W windows (the image shifted by (+-shift, +-shift), offsets the training crops
  drew) and the centre window (the image itself), then their mirror images: V = 10. Without
  `flips` (digits: a mirrored digit is another symbol) only the five unmirrored views, V = 5.
  """
  height = images.shape[1]
  padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)))
  views = np.asarray(augment.ten_crop_batch(jax.numpy.asarray(padded), height))
  views = views.reshape(len(images), 10, *views.shape[1:])
  return (
    views.reshape(-1, *views.shape[2:]) if flips else views[:, :5].reshape(-1, *views.shape[2:])
  )


def view_accuracies(model, variables, test, shift: int, flips: bool, batch: int = 500) -> dict:
  """Test accuracy of `variables` from the centre view alone (the image as it is) and from the
  average of the softmax probabilities over the test views (`ten_views`,
  `augment.average_crop_predictions`): p(y | x) = (1 / V) sum_v softmax(f(view_v(x)))_y."""
  images, labels = test
  num_views = 10 if flips else 5
  apply = jax.jit(functools.partial(model.apply, train=False))
  centre, averaged = [], []
  for start in range(0, len(images), batch):
    x = images[start : start + batch]
    centre.append(np.asarray(apply(variables, x)).argmax(-1))
    views = apply(variables, ten_views(x, shift, flips))
    averaged.append(np.asarray(augment.average_crop_predictions(views, num_views)).argmax(-1))
  return {
    "centre": float(np.mean(np.concatenate(centre) == labels)),
    "views": float(np.mean(np.concatenate(averaged) == labels)),
    "num_views": num_views,
  }


def run(config: ml_collections.ConfigDict) -> FigureResult:
  examples = augmented_examples(photo(config.photo_size), config.num_samples)
  curves = {"without": [], "with": []}
  views = []  # per seed: the augmentation-trained model's test accuracy, centre vs ten views
  name = None
  for seed in config.seeds:
    name, train, val, test = _fit.load_data(
      config.dataset,
      max_train=config.max_train,
      max_val=config.max_val,
      max_test=config.max_test,
      seed=seed,
    )
    flips = name != "digits"
    model = small_cnn(config, int(train[1].max()) + 1)
    for label, aug in (("without", None), ("with", batch_augment(flips, config.shift))):
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
          "final_test_accuracy": out.final_test["accuracy"],
        }
      )
    views.append(view_accuracies(model, out.variables, test, config.shift, flips))
  mean = lambda key, runs: float(np.mean([c[key] for c in runs]))
  final = {k: float(np.mean([c["val_accuracy"][-1] for c in v])) for k, v in curves.items()}
  test_acc = {k: mean("test_accuracy", v) for k, v in curves.items()}
  gap = {
    k: float(np.mean([c["train_accuracy"][-1] - c["val_accuracy"][-1] for c in v]))
    for k, v in curves.items()
  }
  ten = {k: mean(k, views) for k in ("centre", "views")}
  seeds = f"mean of {len(config.seeds)} seeds"
  checks = [
    check_less(
      f"train - validation accuracy at the last step ({name}, {config.max_train} training "
      f"images, {config.steps} steps, {seeds}): with - without augmentation",
      gap["with"] - gap["without"],
      0.0,
    ),
    check_greater(
      f"test accuracy with - without augmentation, each run's parameters chosen on validation "
      f"({seeds})",
      test_acc["with"] - test_acc["without"],
      0.0,
    ),
    check_greater(
      f"augmentation-trained model, final parameters: test accuracy from the average of "
      f"{views[0]['num_views']} views - from the centre view alone ({seeds})",
      ten["views"] - ten["centre"],
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
    "test_views": {"per_seed": views, "mean": ten},
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
  ten = data["test_views"]["mean"]
  ax.set_title(
    f"small CNN on {data['train_size']} {data['dataset']} training images; augmented model, "
    f"final parameters: test accuracy {ten['views']:.4f} from "
    f"{data['test_views']['per_seed'][0]['num_views']} views averaged, {ten['centre']:.4f} "
    "from the image alone",
    fontsize=9,
  )
  ax.legend(fontsize=8, loc="lower right")
  return [common.save_figure(fig, out_dir, NAME)]
