"""experiments/configs/fashion_mnist.py and `python -m experiments.results` (issue 22's table).

The recipes build and train at ':test' size on the first 256 / 64 training / test images of
the real Fashion-MNIST IDX files (skipped where Debian's dataset-fashion-mnist is not
installed), so that the suite stays fast; the command at `--size test` writes RESULTS.md and
results.json with every field; an unknown NET is one line and exit 2.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from experiments import results
from experiments.configs import fashion_mnist
from research import models
from research.data import datasets
from research.data import idx as idx_lib
from research.train import loop, train_and_evaluate, validate

HAVE_DATA = os.path.isdir(
  os.environ.get(datasets.FASHION_MNIST_DIR_ENV, datasets.FASHION_MNIST_DEFAULT_DIR)
)
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="dataset-fashion-mnist is not installed")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def small_fashion_dir(tmp_path_factory):
  """The first 256 training and 64 test images of the real files, as an IDX directory."""
  real = os.environ.get(datasets.FASHION_MNIST_DIR_ENV, datasets.FASHION_MNIST_DEFAULT_DIR)
  splits = {}
  for split, n in (("train", 256), ("test", 64)):
    images, labels = idx_lib.read_split(real, split)
    splits[split] = (images[:n], labels[:n])
  directory = str(tmp_path_factory.mktemp("fashion"))
  idx_lib.write_split_dir(directory, splits)
  return directory


@pytest.fixture
def small_fashion(small_fashion_dir, monkeypatch):
  monkeypatch.setenv(datasets.FASHION_MNIST_DIR_ENV, small_fashion_dir)
  return small_fashion_dir


def _params(config) -> int:
  model = loop.create_model(config, 10)
  shapes = jax.eval_shape(
    lambda r: model.init({"params": r, "dropout": r}, jnp.zeros((1, 28, 28, 1)), train=False),
    jax.random.PRNGKey(0),
  )
  return models.count_params(shapes["params"])


@pytest.mark.parametrize("net", fashion_mnist.NETWORKS)
def test_recipes_are_well_formed_with_the_published_shapes(net):
  for arg in (net, f"{net},test"):
    config = fashion_mnist.get_config(arg)
    validate.check_config(config)
    assert config.dataset.name == "fashion_mnist_idx" and config.dataset.validation == 0
    assert net in fashion_mnist.__doc__
  assert "--config=experiments/configs/fashion_mnist.py:resnet20 " in fashion_mnist.__doc__
  config = fashion_mnist.get_config(net)
  assert config.num_train_steps % 100 == 0 and config.batch_size == 128
  n = _params(config)
  if net == "mlp":
    assert n == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 100 + 100 + 100 * 10 + 10
  elif net == "cnn2":
    assert n < 100_000
  elif net == "cnn2_bn_aug":
    assert 450_000 < n < 550_000  # "~500K"
  else:
    assert n == 269_434  # ResNet-20 with a 1-channel stem (0.27 M)
  if net == "resnet20":  # the paper's 300 epochs, lr / 10 at epochs 150 and 225
    assert config.num_train_steps == 300 * 469
    assert tuple(config.optimizer.schedule.boundaries) == (150 * 469, 225 * 469)
    assert config.optimizer.weight_decay == 5e-4 and config.optimizer.beta == 0.9


def test_an_unknown_recipe_names_the_known_ones():
  with pytest.raises(ValueError, match="cnn2_bn_aug"):
    fashion_mnist.get_config("cnn3")


@needs_data
@pytest.mark.parametrize(
  "net",
  [
    "mlp",
    "cnn2",
    "cnn2_bn_aug",
    pytest.param("resnet20_cpu", marks=pytest.mark.slow),
  ],
)
def test_recipes_train_at_test_size(net, tmp_path, small_fashion):
  config = fashion_mnist.get_config(f"{net},test")
  result = train_and_evaluate(config, str(tmp_path / "run"))
  assert result["step"] == config.num_train_steps
  assert result["num_examples"]["train"] == 256 and result["num_examples"]["test"] == 64
  assert 0.0 <= result["test_accuracy"] <= 1.0


@needs_data
def test_the_command_writes_the_table(tmp_path, small_fashion):
  out = tmp_path / "out"
  assert results.main(["--out", str(out), "--only", "mlp", "--size", "test", "--seeds", "2"]) == 0
  report = json.loads((out / "results.json").read_text())
  assert report["command"] == (
    f"python -m experiments.results --out {out} --only mlp --size test --seeds 2"
  )
  assert {"date", "machine", "size", "seeds", "selected", "total_wall_s", "rows", "not_run"} <= set(
    report
  )
  assert {"cpu", "cores", "jax", "devices", "platform"} <= set(report["machine"])
  (row,) = report["rows"]
  assert row["net"] == "mlp" and row["published"] == 0.8833 and "256-128-100" in row["source"]
  acc = row["test_accuracy"]
  assert len(acc["per_seed"]) == 2 and acc["min"] <= acc["mean"] <= acc["max"]
  assert row["reaches_published"] == (acc["mean"] >= 0.8833)
  assert row["gap_points"] == round(100 * (0.8833 - acc["mean"]), 2)
  assert row["params"] == 12_782 and row["steps"] == 4 and row["wall_s"] > 0
  assert [r["seed"] for r in row["runs"]] == [0, 1]
  assert {r[1] for r in report["not_run"]} >= {"ResNet18", "DenseNet-BC 768K", "WRN-28-10"}
  assert any(
    r[0] == "CIFAR-10" and r[1] == "ResNet-110" and r[2] == 0.9357 for r in report["not_run"]
  )
  md = (out / "RESULTS.md").read_text()
  assert "| mlp: MLP 784-256-128-100-10 | 0.8833 |" in md
  assert "below by" in md or "at or above" in md
  assert "not run here" in md and report["command"] in md and report["machine"]["cpu"] in md


def test_an_unknown_net_is_one_line_and_exit_2(tmp_path):
  proc = subprocess.run(
    [sys.executable, "-m", "experiments.results", "--out", str(tmp_path / "o"), "--only", "vgg"],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=60,
  )
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
    "error: unknown net 'vgg'; known nets: mlp, cnn2, cnn2_bn_aug, resnet20_cpu, resnet20"
  ]
  assert not (tmp_path / "o").exists()
  assert "jax" not in proc.stderr


def test_mlp_widths_set_each_hidden_layer_and_keep_the_old_tree():
  x = jnp.zeros((2, 28, 28, 1))
  key = jax.random.PRNGKey(0)
  old = models.create("mlp", num_classes=10, depth=2, width=32).init(key, x)
  same = models.create("mlp", num_classes=10, widths=(32, 32)).init(key, x)
  assert jax.tree.map(jnp.shape, old) == jax.tree.map(jnp.shape, same)
  assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool((a == b).all()), old, same)))
  shapes = models.create("mlp", num_classes=10, widths=(256, 128, 100)).init(key, x)["params"]
  assert [shapes[f"dense_{i}"]["kernel"].shape for i in range(3)] == [
    (784, 256),
    (256, 128),
    (128, 100),
  ]
  assert shapes["head"]["kernel"].shape == (100, 10)
  with pytest.raises(ValueError, match="widths"):
    models.create("mlp", num_classes=10, widths=(8, 0)).init(key, x)


def test_alexnet_norm_adds_batchnorm_and_none_keeps_the_old_tree():
  x = jnp.ones((2, 28, 28, 1))
  key = jax.random.PRNGKey(0)
  kwargs = fashion_mnist.get_config("cnn2_bn_aug,test").model.to_dict()
  del kwargs["name"], kwargs["norm"]
  plain = models.create("alexnet", num_classes=10, **kwargs)
  bn = models.create("alexnet", num_classes=10, norm="batch", **kwargs)
  old = plain.init(key, x)
  assert set(old) == {"params"} and set(old["params"]) == {"conv1", "conv2", "fc6", "fc7", "fc8"}
  assert "bias" in old["params"]["conv1"] and "bias" in old["params"]["fc6"]
  new = bn.init(key, x)
  norms = {"norm_conv1", "norm_conv2", "norm_fc6", "norm_fc7"}
  assert set(new["params"]) == set(old["params"]) | norms and set(new["batch_stats"]) == norms
  assert "bias" not in new["params"]["conv1"] and "bias" in new["params"]["fc8"]
  _, updates = bn.apply(new, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"])
  assert set(updates["batch_stats"]) == norms
