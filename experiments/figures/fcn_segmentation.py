"""FCN-32s / 16s / 8s (Long et al. 2015) on a small real segmentation set.

Default: the real 512x512 fluorescence image of cell nuclei with its hand-drawn instance mask
that ships in the stardist wheel (see `research.data.nuclei`), turned into three classes
(background, nucleus, nucleus boundary: the boundary class is what separates touching nuclei and
needs fine resolution). The left three quarters of the image give the training tiles (64x64,
stride 32, with their eight flips and quarter turns), the right quarter the test tiles.
`--full`: Oxford-IIIT Pet (TFDS 'oxford_iiit_pet', trimap classes) at 224x224, for accelerators.

The three networks are `research.models.create('fcn32s' | 'fcn16s' | 'fcn8s', width=...)`: a
VGG-16 backbone (narrowed by `width`), convolutionalized fc6/fc7, and transposed convolutions
initialized to bilinear upsampling, fusing pool4 (16s) and pool3 (8s) scores. Same optimizer,
steps and seed for all three.

Checks: each FCN's test mean IoU above the trivial baseline (every pixel the training set's most
frequent class); FCN-16s's and FCN-8s's mean IoU above FCN-32s's: the skips restore the
resolution that x32 upsampling loses. (At this scale none of the three learns the thin boundary
class within the default steps, so its IoU is reported in `data` but not checked.)
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from matplotlib.colors import ListedColormap

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check_greater
from research import optim
from research.data import load_arrays, nuclei
from research.models import create, iou_from_confusion

NAME = "fcn_segmentation"
TITLE = "FCN-32s / 16s / 8s: semantic segmentation of real nuclei, mean IoU"
CAPTION = (
  "Fully convolutional networks with bilinear-initialized transposed convolutions trained on "
  "tiles of a real fluorescence image of nuclei (stardist's example, classes background / "
  "nucleus / boundary) and tested on a held-out part of it. Upsampling the stride-32 scores "
  "alone (FCN-32s) blurs boundaries; fusing pool4 (16s) and pool3 (8s) scores sharpens them."
)
PAPER = common.Paper(
  source='Long et al. 2015, "Fully Convolutional Networks for Semantic Segmentation", Table 2',
  setup="PASCAL VOC 2011 val, VGG16-based FCNs",
  number=(
    "mean IU 59.4 (FCN-32s), 62.4 (FCN-16s), 62.7 (FCN-8s): finer skip layers improve the "
    "segmentation"
  ),
)

VARIANTS = ("fcn32s", "fcn16s", "fcn8s")


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "stardist_nuclei"
  config.image_size = 64
  config.stride = 32  # of the nucleus tiles (unused by Oxford-IIIT Pet)
  config.width = 1 / 16
  config.fc6_kernel = 1
  config.batch_size = 8
  config.steps = 200
  config.eval_every = 100
  config.learning_rate = 3e-3
  config.optimizer = "adam"
  config.max_test = None
  config.seed = 0
  return common.sized(
    size,
    config,
    test={"image_size": 128, "stride": 128, "steps": 10, "eval_every": 5, "width": 1 / 32},
    # Long et al.: VGG-16 at full width, batch 20, Adam-free SGD momentum 0.99 (lr 1e-4)
    full={
      "dataset": "oxford_iiit_pet",
      "image_size": 224,
      "width": 1.0,
      "fc6_kernel": 7,
      "batch_size": 20,
      "steps": 20_000,
      "eval_every": 1000,
      "learning_rate": 1e-4,
      "optimizer": "nesterov",
      "max_test": 512,
    },
  )


def dihedral(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The 8 flips / quarter turns of each (N, H, W, C) image and (N, H, W) label map (8N)."""
  xs, ys = [], []
  for k in range(4):
    for flip in (False, True):
      x, y = np.rot90(images, k, axes=(1, 2)), np.rot90(labels, k, axes=(1, 2))
      if flip:
        x, y = x[:, :, ::-1], y[:, :, ::-1]
      xs.append(x)
      ys.append(y)
  return np.ascontiguousarray(np.concatenate(xs)), np.ascontiguousarray(np.concatenate(ys))


def _nuclei_data(config):
  (x_train, y_train), (x_test, y_test), source = nuclei.train_test_tiles(
    config.image_size, train_fraction=0.75, stride=config.stride
  )
  x_train, y_train = dihedral(x_train, y_train)
  return f"stardist nuclei ({source})", nuclei.CLASS_NAMES, (x_train, y_train), (x_test, y_test)


def _pet_data(config):
  def resize(split, limit):
    x, y = load_arrays("oxford_iiit_pet", split)
    if limit:
      x, y = x[:limit], y[:limit]
    s = config.image_size
    x = np.asarray(jax.image.resize(x, (len(x), s, s, x.shape[-1]), "bilinear"))
    y = np.asarray(jax.image.resize(y, (len(y), s, s), "nearest")).astype(np.int32)
    return x, y

  return (
    "oxford_iiit_pet",
    ("foreground", "background", "border"),
    resize("train", None),
    resize("test", config.max_test),
  )


def run(config: ml_collections.ConfigDict) -> FigureResult:
  loader = _nuclei_data if config.dataset == "stardist_nuclei" else _pet_data
  name, class_names, train, test = loader(config)
  num_classes = len(class_names)
  mean, std = train[0].mean(), train[0].std()
  train = ((train[0] - mean) / std, train[1])
  test = ((test[0] - mean) / std, test[1])
  x_test = jnp.asarray(test[0])

  results, predictions = {}, {}
  for variant in VARIANTS:
    model = create(
      variant, num_classes=num_classes, width=config.width, fc6_kernel=config.fc6_kernel
    )

    tx = (
      optim.adam(config.learning_rate)
      if config.optimizer == "adam"
      else optim.nesterov(config.learning_rate, 0.99)
    )
    out = _fit.fit_config(
      config,
      model,
      tx,
      train,
      test,
      eval_size=4,
    )
    confusions = np.asarray(out.val_sums["confusion"], np.float64)  # (E, C, C) test confusion
    ious = np.asarray(jax.vmap(iou_from_confusion)(jnp.asarray(confusions)))  # (E, C)
    results[variant] = {
      "iou": ious[-1].tolist(),
      "mean_iou": float(np.nanmean(ious[-1])),
      "mean_iou_curve": np.nanmean(ious, axis=1).tolist(),
      "pixel_accuracy": float(np.trace(confusions[-1]) / confusions[-1].sum()),
      "step_loss": out.step_loss[::10].tolist(),
    }
    predictions[variant] = np.asarray(
      jnp.argmax(model.apply(out.variables, x_test[:4], train=False), -1)
    )
    steps = out.eval_steps

  majority = int(np.bincount(train[1].ravel(), minlength=num_classes).argmax())
  base_conf = np.zeros((num_classes, num_classes))
  np.add.at(base_conf, (np.asarray(test[1]).ravel(), majority), 1)
  baseline = float(np.nanmean(iou_from_confusion(jnp.asarray(base_conf))))
  r32, r16, r8 = results["fcn32s"], results["fcn16s"], results["fcn8s"]
  checks = [
    check_greater(
      f"{v} test mean IoU - trivial baseline (all '{class_names[majority]}')",
      results[v]["mean_iou"] - baseline,
      0.0,
    )
    for v in VARIANTS
  ]
  # Skip fusion from pool4 (16s) and pool3 (8s) restores detail the 32x upsampling loses.
  checks += [
    check_greater("FCN-16s - FCN-32s test mean IoU", r16["mean_iou"] - r32["mean_iou"], 0.0),
    check_greater("FCN-8s - FCN-32s test mean IoU", r8["mean_iou"] - r32["mean_iou"], 0.0),
  ]
  data = {
    "dataset": name,
    "classes": list(class_names),
    "tile": config.image_size,
    "num_train_tiles": len(train[0]),
    "num_test_tiles": len(test[0]),
    "steps": steps.tolist(),
    "results": results,
    "trivial_baseline_mean_iou": baseline,
    "examples": {
      "image": np.asarray(test[0][:4, ..., 0]).tolist(),
      "label": np.asarray(test[1][:4]).tolist(),
      **{v: p.tolist() for v, p in predictions.items()},
    },
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  data = result.data
  ex = data["examples"]
  n = len(ex["image"])
  fig = common.figure(
    (14, 2.2 * n + 0.8),
    title="Held-out test tiles: black background, green nucleus, yellow boundary",
  )
  grid = fig.add_gridspec(n, 7, width_ratios=(1, 1, 1, 1, 1, 0.3, 2.6), wspace=0.08)
  cols = ("image", "label", *VARIANTS)
  cmap = ListedColormap(["black", "tab:green", "yellow"][: len(data["classes"])])
  for i in range(n):
    for j, key in enumerate(cols):
      ax = fig.add_subplot(grid[i, j])
      if key == "image":
        ax.imshow(ex[key][i], cmap="gray")
      else:
        ax.imshow(
          ex[key][i], cmap=cmap, vmin=0, vmax=len(data["classes"]) - 1, interpolation="nearest"
        )
      ax.set_xticks([])
      ax.set_yticks([])
      if i == 0:
        title = (
          key
          if key in ("image", "label")
          else (f"{key}\nmIoU {data['results'][key]['mean_iou']:.3f}")
        )
        ax.set_title(title, fontsize=9)
  ax = fig.add_subplot(grid[:, 6])  # column 5 is a spacer for the axis labels
  for v, color in zip(VARIANTS, ("tab:red", "tab:orange", "tab:blue"), strict=True):
    r = data["results"][v]
    ious = ", ".join(f"{c} {x:.2f}" for c, x in zip(data["classes"], r["iou"], strict=True))
    ax.plot(data["steps"], r["mean_iou_curve"], color=color, label=f"{v} ({ious})")
  ax.axhline(data["trivial_baseline_mean_iou"], color="gray", ls=":", label="trivial baseline")
  ax.set_xlabel("training step")
  ax.set_ylabel("test mean IoU")
  ax.set_ylim(0, 1)
  ax.legend(fontsize=7, loc="upper left", title="final per-class test IoU", title_fontsize=7)
  ax.set_title(
    f"{data['num_train_tiles']} train / {data['num_test_tiles']} test tiles "
    f"of {data['tile']}x{data['tile']}",
    fontsize=9,
  )
  fig.subplots_adjust(left=0.02, right=0.98, top=0.9, bottom=0.08)
  return [common.save_figure(fig, out_dir, NAME, tight=False)]
