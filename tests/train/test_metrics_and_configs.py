"""metrics.jsonl, TensorBoard files, the summary line; every experiment config is well formed."""

import glob
import importlib
import os

import pytest

from experiments.configs import cifar10_resnet, mlp_mnist
from research import data, models
from research.train import metrics as metrics_lib
from research.train import validate

CONFIGS = [
  ("mlp_digits", None),
  ("mlp_digits", "test"),
  ("densenet_bc_100", None),
  ("densenet_bc_100", "test"),
  ("alexnet_imagenet", None),
  ("alexnet_imagenet", "test"),
  ("fcn8s_pet", None),
  ("fcn8s_pet", "test"),
]
CONFIGS += [("cifar10_resnet", n) for n in cifar10_resnet.NETWORKS]
CONFIGS += [("cifar10_resnet", "resnet110,test"), ("cifar10_resnet", "plain56,test")]
CONFIGS += [("mlp_mnist", d) for d in mlp_mnist.DATASETS] + [("mlp_mnist", "fashion_mnist,test")]


def test_metrics_jsonl_and_tensorboard(tiny_run):
  workdir, result = tiny_run
  records = metrics_lib.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  train = [r for r in records if r["split"] == "train"]
  evals = [r for r in records if r["split"] == "validation"]
  tests = [r for r in records if r["split"] == "test"]
  assert [r["step"] for r in train] == [5, 10, 15, 20]
  assert [r["step"] for r in evals] == [10, 20]
  assert all({"loss", "accuracy", "learning_rate", "steps_per_second"} <= set(r) for r in train)
  assert evals[-1]["accuracy"] == result["validation_accuracy"]
  # The test split, once, at the end: the final parameters and the best-validation checkpoint.
  assert [(r["step"], r["params"]) for r in tests] == [
    (20, "final"),
    (result["test_step"], "best"),
  ]
  assert tests[0]["accuracy"] == result["final_test_accuracy"]
  assert tests[1]["accuracy"] == result["test_accuracy"]
  best = max(evals, key=lambda r: r["accuracy"])  # the first of equal bests
  assert result["test_step"] == result["best_step"] == best["step"]
  for split in ("train", "validation", "test", "test_best"):
    assert glob.glob(os.path.join(workdir, "tensorboard", split, "events.out.tfevents.*"))
  assert os.path.exists(os.path.join(workdir, "config.json"))


def test_truncate_jsonl_drops_lines_past_the_step_and_torn_lines(tmp_path):
  path = str(tmp_path / "m.jsonl")
  with open(path, "w") as f:
    f.write('{"step": 5, "split": "train"}\n{"step": 10, "split": "train"}\n{"step": 1')
  metrics_lib.truncate_jsonl(path, 5)
  assert metrics_lib.read_jsonl(path) == [{"step": 5, "split": "train"}]


@pytest.mark.parametrize("name, arg", CONFIGS)
def test_config_is_well_formed(name, arg):
  module = importlib.import_module(f"experiments.configs.{name}")
  config = module.get_config(arg)
  validate.check_config(config)
  assert config.dataset.name in data.known_names()
  kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
  models.create(config.model.name, num_classes=10, **kwargs)
  assert f"--config=experiments/configs/{name}.py" in module.__doc__
  if arg and "test" in arg:
    assert config.num_train_steps <= 20 and not config.tensorboard


def test_unknown_config_argument():
  with pytest.raises(ValueError, match="resnet21"):
    cifar10_resnet.get_config("resnet21")
