"""The papers' configs (test-sized) train end to end on TFDS mock data (no download)."""

import importlib
from unittest import mock

import pytest
import tensorflow_datasets as tfds

from research.train import train_and_evaluate

CASES = [
  ("mlp_mnist", "mnist,test", ()),
  ("mlp_mnist", "fashion_mnist,test", (pytest.mark.slow,)),
  ("cifar10_resnet", "resnet20,test", (pytest.mark.slow,)),
  ("cifar10_resnet", "plain20,test", (pytest.mark.slow,)),
  ("densenet_bc_100", "test", (pytest.mark.slow,)),
  ("alexnet_imagenet", "test", (pytest.mark.slow,)),
  ("fcn8s_pet", "test", (pytest.mark.slow,)),
]


@pytest.mark.parametrize(
  "name, arg", [pytest.param(n, a, marks=m, id=f"{n}:{a}") for n, a, m in CASES]
)
def test_paper_config_trains_on_mock_data(name, arg, tmp_path):
  config = importlib.import_module(f"experiments.configs.{name}").get_config(arg)
  config.dataset.data_dir = str(tmp_path / "data")
  config.batch_size = 8  # mock splits hold 12 examples: 8 to train on, 4 held out
  config.dataset.validation = 4
  with (
    tfds.testing.mock_data(num_examples=12),
    mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True),
  ):
    result = train_and_evaluate(config, str(tmp_path / "run"))
  assert result["step"] == config.num_train_steps
  metric = "test_mean_iou" if name == "fcn8s_pet" else "test_accuracy"
  assert 0.0 <= result[metric] <= 1.0
