"""One spec per dataset: everything about a dataset comes from `research.data.DATASETS`."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

import research.data as rd
from research.data import datasets, pipeline, sources


def test_every_known_dataset_has_a_complete_spec():
  for name, spec in rd.DATASETS.items():
    assert spec.name == name and spec.task in datasets.TASKS and spec.splits
    assert spec.prepare, f"{name}: no preparation hint"
    pipeline.host_augmentation(spec.augmentation, stats=rd.ChannelStats(*[np.ones(3)] * 4))
    assert isinstance(spec.source, sources.Source)
    if isinstance(spec.source, sources.TfdsSource):
      assert spec.source.tfds_name and spec.num_classes and spec.image_shape


def test_the_spec_is_what_the_rest_of_the_package_reads():
  assert pipeline.default_augmentation("cifar10") == rd.spec("cifar10").augmentation == "crop_flip"
  assert rd.eval_crop("imagenet2012") == 224 and rd.eval_crop("cifar10") is None
  info = rd.DatasetInfo("imagenet2012", 1000, (224, 224, 3), {}, "classification")
  assert rd.record_shape("imagenet2012", info) == (256, 256, 3)


def test_adding_a_tfds_classification_dataset_is_one_entry(tmp_path, monkeypatch):
  """A new TFDS name needs only its spec: info, batches and the missing-data message follow."""
  monkeypatch.setitem(
    rd.DATASETS,
    "svhn_cropped",
    rd.tfds_classification("svhn_cropped", 10, (32, 32, 3), augmentation="flip"),
  )
  with pytest.raises(rd.DatasetNotFoundError, match="tfds build svhn_cropped"):
    rd.get_info("svhn_cropped", data_dir=tmp_path)
  with tfds.testing.mock_data(num_examples=8), monkeypatch.context() as m:
    m.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
    info = rd.get_info("svhn_cropped", data_dir=tmp_path)
    assert info.num_examples == {"train": 8, "test": 8} and info.num_classes == 10
    batch = next(
      rd.create_iterator(
        "svhn_cropped", "train", global_batch_size=4, seed=0, train=True, data_dir=tmp_path
      )
    )
    assert batch["image"].shape == (4, 32, 32, 3)


def test_fashion_directory_follows_the_environment(tmp_path, monkeypatch):
  monkeypatch.setenv(datasets.FASHION_MNIST_DIR_ENV, str(tmp_path))
  assert rd.spec("fashion_mnist_idx").source.directory == str(tmp_path)
  with pytest.raises(rd.DatasetNotFoundError, match=rf"{tmp_path}.*apt-get install"):
    rd.get_info("fashion_mnist_idx")
  monkeypatch.delenv(datasets.FASHION_MNIST_DIR_ENV)
  assert rd.spec("fashion_mnist_idx").source.directory == datasets.FASHION_MNIST_DEFAULT_DIR


def test_registered_arrays_are_a_dataset_like_any_other(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.random((40, 6, 6, 1)).astype(np.float32)
  labels = np.arange(40) % 4
  name = rd.register_arrays(
    "toy_arrays", {"train": (images, labels), "test": (images[:10], labels[:10])}
  )
  info = rd.get_info(name, data_dir=tmp_path)
  assert info == rd.DatasetInfo(name, 4, (6, 6, 1), {"train": 40, "test": 10}, "classification")
  x, y = rd.load_arrays(name, "train")
  np.testing.assert_allclose(x, images, atol=0.5 / 255)
  np.testing.assert_array_equal(y, labels)
  stats = rd.channel_stats(name, data_dir=tmp_path)
  np.testing.assert_allclose(stats.mean, x.mean(), rtol=1e-5)
  rd.register_arrays(name, {"train": (images[:20], labels[:20]), "test": (images, labels)})
  assert rd.get_info(name, data_dir=tmp_path).num_examples == {"train": 20, "test": 40}
  with pytest.raises(ValueError, match="already defined"):
    rd.register_arrays("digits", {"train": (images, labels)})
  with pytest.raises(ValueError, match=r"expected \(N, H, W, C\)"):
    rd.register_arrays("bad", {"train": (images[..., 0], labels)})


def test_data_modules_do_not_import_each_other_in_a_circle():
  import ast
  import pathlib

  for leaf in ("idx.py", "decoders.py", "stats.py"):  # the modules sources.py builds on
    source = pathlib.Path(datasets.__file__).with_name(leaf).read_text()
    imported = {n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)}
    # research.errors imports nothing from the package: no circle through it
    bad = [m for m in imported if m and m.startswith("research") and m != "research.errors"]
    assert not bad, (leaf, bad)
