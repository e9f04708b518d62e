"""Pretrained initialization vs training from scratch on a small target set.

The lecture (notes 001 ~104-106; 000 ~514): instead of a random initialization, start from the
parameters of a network trained on a similar task, the whole network or only its first layers,
which extract general features; then fine-tune. Here on the full Fashion-MNIST, through the
real training path, `research.train.train_and_evaluate(config, workdir)`:

1. pretrain on the source task: classes 0-4 (T-shirt, trouser, pullover, dress, coat), all
   their 27,500 or so training images, batch 64;
2. on the target task, classes 5-9 (sandal, shirt, sneaker, bag, ankle boot; labels kept, so
   the head has 10 outputs instead of the source's 5) with only `shots` training images per
   class (all of them in every step), train for the same number of steps
   - from scratch (random initialization),
   - from the source run, every layer but the head (`init_from`; the head's shape changed, so
     it starts fresh), all fine-tuned,
   - the same with the early layers frozen (`freeze`: the stem and the first stage, the
     generic low-level filters), the rest fine-tuned,
   - only the early layers taken from the source run (`init_layers`: the notes' "initialize
     only the first layers"; Yosinski et al.'s AnB+), the rest random, all fine-tuned;
3. compare the target test accuracy (the 5,000 test images of classes 5-9).

Network: the CIFAR ResNet-8 (`resnet20` at depth 8, widths 8/16/32, 19,000 parameters; Yosinski
et al. transfer an AlexNet-like net on ImageNet halves): reduced, with 400 pretraining steps
and 150 target steps, to about a minute on two CPU cores.

Splits: Fashion-MNIST's training split less its 5,000 validation images (`_fit.load_data`,
held out by `research.data.holdout`) gives the training images of both tasks, that validation
set (the task's classes) each task's 'validation' split and the test split each task's 'test'.
`train_and_evaluate` evaluates on validation during training, keeps the best-validation
checkpoint (its early-stopping metric, accuracy) and evaluates the test split once at the end
on it (`test_accuracy`, the model it selects) and on the final parameters
(`final_test_accuracy`). Both tasks are registered as in-memory datasets
(`research.data.register_arrays`), so that the ordinary training configuration
(`experiments/configs/base.py`) runs unchanged. Checks: each pretrained start beats scratch at
equal steps (mean over seeds of the target test accuracy of the checkpoint chosen on
validation).
"""

from __future__ import annotations

import json
import pathlib
import tempfile

import ml_collections
import numpy as np

from experiments.configs import base
from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check_greater
from research import data as data_lib
from research.train import train_and_evaluate

NAME = "fine_tuning"
TITLE = "Fine-tuning: pretrained initialization (init_from, freeze, init_layers) vs scratch"
CAPTION = (
  "Target task: Fashion-MNIST classes 5-9 (sandal, shirt, sneaker, bag, ankle boot) with a "
  "handful of training images per class. A ResNet-8 pretrained on classes 0-4 and fine-tuned "
  "(all layers, with the early layers frozen, or with only the early layers taken from it) "
  "reaches a higher test accuracy than the same network trained from scratch for the same "
  "number of steps (left: validation curves; right: test accuracy of each run's "
  "best-validation checkpoint). Runs through research.train.train_and_evaluate with init_from, "
  "freeze and init_layers."
)
PAPER = common.Paper(
  source=(
    'Yosinski et al. 2014, "How transferable are features in deep neural networks?", Fig. 2; '
    "the lecture, notes 001 ~106"
  ),
  setup=(
    "ImageNet split into two halves of 500 classes, transfer of the first n layers of an "
    "AlexNet-like net"
  ),
  number=(
    "copied first layers that are then fine-tuned (AnB+) generalize better than training on the "
    "target from scratch, even with a large target set; the notes: initialize the whole "
    "network or only its first layers from a pretrained one"
  ),
)

STARTS = ("scratch", "fine-tune all", "frozen early layers", "first layers only")


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist_idx"
  config.model = ml_collections.ConfigDict({"name": "resnet20", "depth": 8, "widths": (8, 16, 32)})
  config.source_classes = (0, 1, 2, 3, 4)
  config.target_classes = (5, 6, 7, 8, 9)
  config.shots = 10
  config.pretrain_steps = 400
  config.target_steps = 150
  config.batch_size = 64  # pretraining; the target runs take all their shots x 5 images a step
  config.learning_rate = 1e-3
  config.early_layers = r"^(stem|stage1_)"  # the stem convolution and the first stage's blocks
  config.seeds = (0, 1)
  return common.sized(
    size,
    config,
    test={
      "dataset": "digits",
      "shots": 5,
      "pretrain_steps": 30,
      "target_steps": 10,
      "seeds": (0,),
      "model": {"widths": (4, 8, 8)},
    },
    full={"pretrain_steps": 2000, "target_steps": 500, "seeds": (0, 1, 2, 3, 4)},
  )


def select(images, labels, classes, per_class=None, rng=None, relabel=True):
  """The examples of `classes` (optionally `per_class` of each), relabelled 0..len(classes)-1
  when `relabel`."""
  keep = []
  for c in classes:
    idx = np.flatnonzero(labels == c)
    if per_class is not None:
      idx = rng.choice(idx, per_class, replace=False)
    keep.append(idx)
  keep = np.sort(np.concatenate(keep))
  remap = {c: (i if relabel else c) for i, c in enumerate(classes)}
  return images[keep], np.asarray([remap[int(y)] for y in labels[keep]], np.int32)


def train_config(config, dataset: str, steps: int, batch_size: int, seed: int, **extra):
  c = base.get_base_config()
  c.model = ml_collections.ConfigDict(config.model.to_dict())
  c.dataset.name = dataset
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = config.learning_rate
  c.batch_size = batch_size
  c.num_train_steps = steps
  c.log_every_steps = max(1, steps // 10)
  c.eval_every_steps = max(1, steps // 5)
  c.checkpoint_every_steps = steps
  c.seed = seed
  c.num_devices = 1
  c.tensorboard = False
  c.progress_bar = False
  for key, value in extra.items():
    c[key] = value
  return c


def starts(pretrained: str, early_layers: str) -> dict[str, dict]:
  """Each start's config fields: random initialization; the pretrained network (`init_from`,
  a fresh head: its shape changed) fine-tuned entirely, or with the early layers kept fixed
  (`freeze`); or only the early layers taken from it and the rest random (`init_layers`, the
  notes' "initialize only the first layers")."""
  return {
    "scratch": {},
    "fine-tune all": {"init_from": pretrained},
    "frozen early layers": {"init_from": pretrained, "freeze": early_layers},
    "first layers only": {"init_from": pretrained, "init_layers": early_layers},
  }


def _validation_curve(workdir: pathlib.Path) -> list[tuple[int, float]]:
  """(step, validation accuracy) of each evaluation in the run's metrics.jsonl."""
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [(r["step"], r["accuracy"]) for r in rows if r.get("split") == "validation"]


def run(config: ml_collections.ConfigDict) -> FigureResult:
  data = _fit.load_data(config.dataset)
  (x_train, y_train), (x_val, y_val), (x_test, y_test) = data.train, data.validation, data.test
  results = {s: [] for s in STARTS}  # test accuracy of the best-validation checkpoint
  final = {s: [] for s in STARTS}  # test accuracy of the final parameters
  curves = {s: [] for s in STARTS}
  target_batch = config.shots * len(config.target_classes)  # all the target images each step
  with tempfile.TemporaryDirectory(prefix="fine_tuning_") as tmp:
    root = pathlib.Path(tmp)
    source = data_lib.register_arrays(
      "fine_tuning_source",
      {
        "train": select(x_train, y_train, config.source_classes),
        "validation": select(x_val, y_val, config.source_classes),
        "test": select(x_test, y_test, config.source_classes),
      },
    )
    pretrained = root / "pretrain"
    source_metrics = train_and_evaluate(
      train_config(config, source, config.pretrain_steps, config.batch_size, 0), str(pretrained)
    )
    extras = starts(str(pretrained), config.early_layers)
    for seed in config.seeds:
      rng = np.random.default_rng(seed)
      target = data_lib.register_arrays(
        f"fine_tuning_target{seed}",
        {
          "train": select(x_train, y_train, config.target_classes, config.shots, rng, False),
          "validation": select(x_val, y_val, config.target_classes, relabel=False),
          "test": select(x_test, y_test, config.target_classes, relabel=False),
        },
      )
      for start in STARTS:
        workdir = root / f"{start.replace(' ', '_')}_{seed}"
        metrics = train_and_evaluate(
          train_config(config, target, config.target_steps, target_batch, seed, **extras[start]),
          str(workdir),
        )
        results[start].append(float(metrics["test_accuracy"]))
        final[start].append(float(metrics["final_test_accuracy"]))
        curves[start].append(_validation_curve(workdir))
  mean = {s: float(np.mean(v)) for s, v in results.items()}
  checks = [
    check_greater(
      f"{s}: target test accuracy - scratch, best-validation checkpoints (mean of "
      f"{len(config.seeds)} seeds, {config.target_steps} steps each)",
      mean[s] - mean["scratch"],
      0.0,
    )
    for s in STARTS[1:]
  ]
  data = {
    "dataset": data.name,
    "source": f"{data.name} classes {list(config.source_classes)}, all training images",
    "target": (
      f"{data.name} classes {list(config.target_classes)}, {config.shots} training images per class"
    ),
    "source_test_accuracy": float(source_metrics["test_accuracy"]),
    "target_steps": config.target_steps,
    "model": config.model.to_dict(),
    "test_accuracy": results,  # of each run's best-validation checkpoint, the one it selects
    "final_test_accuracy": final,  # of each run's final parameters
    "mean_test_accuracy": mean,
    "curves": curves,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  data = result.data
  fig, (ax, bx) = common.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": (1.4, 1)})
  colors = {
    "scratch": "tab:gray",
    "fine-tune all": "tab:blue",
    "frozen early layers": "tab:green",
    "first layers only": "tab:orange",
  }
  for start, runs in data["curves"].items():
    for i, curve in enumerate(runs):
      steps, acc = zip(*curve, strict=True)
      ax.plot(
        steps, acc, "-o", ms=3, color=colors[start], alpha=0.8, label=start if i == 0 else None
      )
  ax.set_xlabel("target training step")
  ax.set_ylabel("target validation accuracy")
  ax.set_title(f"target: {data['target']}", fontsize=9)
  ax.legend(fontsize=8)
  starts = list(data["mean_test_accuracy"])
  means = [data["mean_test_accuracy"][s] for s in starts]
  bx.bar([s.replace(" ", "\n", 1) for s in starts], means, color=[colors[s] for s in starts])
  for i, s in enumerate(starts):
    bx.scatter(
      [i] * len(data["test_accuracy"][s]),
      data["test_accuracy"][s],
      color="k",
      s=10,
      zorder=3,
    )
    bx.text(i, means[i], f"{means[i]:.3f}", ha="center", va="bottom", fontsize=8)
  bx.set_ylabel(f"test accuracy, best-validation checkpoint of {data['target_steps']} steps")
  bx.set_ylim(0, 1.05)
  source = data["source"].replace("], ", "],\n", 1)  # the dataset's name can be long
  bx.set_title(
    f"source: {source}\n(source test accuracy {data['source_test_accuracy']:.3f})",
    fontsize=9,
  )
  return [common.save_figure(fig, out_dir, NAME)]
