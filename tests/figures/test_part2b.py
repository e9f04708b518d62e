"""Part-2 figures, second half (architectures, fine-tuning, augmentation).

The paper effects need the default sizes (minutes on a 2-core CPU), so here each `run` goes at
its much reduced `get_config("test")` size and the test asserts the structure of `data`, that
the checks exist and are computed from the run (finite, consistent with `data`), and that `plot`
writes its PNG; the
pure helpers (interpolation, IoU, tiling, IDX writing, input scaling) are tested against
hand-computed values. `python -m experiments.figures --only ...` runs the default sizes, whose
checks are the paper claims.
"""

import importlib
import math

import numpy as np
import pytest


def _run_and_plot(name, tmp_path):
  module = importlib.import_module(f"experiments.figures.{name}")
  result = module.run(module.get_config("test"))
  assert result.checks, f"{name}: no checks"
  for c in result.checks:
    assert isinstance(c.passed, bool)
    assert c.measured is not None
  paths = module.plot(result, tmp_path)
  assert [p.name for p in paths] == [f"{name}.png"] and paths[0].stat().st_size > 10_000
  return result


def test_relu_vs_tanh_cnn_structure(tmp_path):
  """Reduced: digits, 120 steps, one learning rate per activation and scaling; the check's steps
  and the ratio are recomputed from the curves."""
  from experiments.figures.relu_vs_tanh_cnn import steps_to

  result = _run_and_plot("relu_vs_tanh_cnn", tmp_path)
  threshold = result.data["threshold"]
  for scaling in ("paper", "standardized"):
    entry = result.data["scalings"][scaling]
    assert entry["eval_steps"] == [0, 20, 40, 60, 80, 100, 120]
    for act in ("relu", "tanh"):
      errors = entry[act]["best"]["train_error"]
      assert len(errors) == 7 and all(0.0 <= e <= 1.0 for e in errors)
  assert result.data["ratio"].keys() == {"paper", "standardized"}
  paper = result.data["scalings"]["paper"]
  steps = np.array(paper["eval_steps"])
  hits = [
    steps_to(steps, np.array(paper[act]["best"]["train_error"]), threshold)
    for act in ("relu", "tanh")
  ]
  assert result.checks[0].measured == hits
  assert result.data["ratio"]["paper"] == pytest.approx(hits[1] / hits[0])
  assert len(result.checks) == 1  # one rate per grid: no bracket to check


def test_relu_vs_tanh_helpers():
  from experiments.figures.relu_vs_tanh_cnn import fastest, inside, scale_inputs, steps_to

  runs = [
    {"learning_rate": 0.1, "steps_to_threshold": None, "train_error": [0.9, 0.3]},
    {"learning_rate": 0.3, "steps_to_threshold": 40, "train_error": [0.9, 0.2]},
    {"learning_rate": 1.0, "steps_to_threshold": 40, "train_error": [0.9, 0.1]},
  ]
  assert fastest(runs, 100)["learning_rate"] == 1.0  # tie on steps: the lower final error
  assert inside((0.1, 0.3, 1.0), 0.3) and not inside((0.1, 0.3, 1.0), 1.0)

  assert steps_to(np.array([0, 10, 20, 30]), np.array([0.9, 0.5, 0.2, 0.1]), 0.25) == 20
  assert steps_to(np.array([0, 10]), np.array([0.9, 0.5]), 0.25) is None
  x = np.array([[0.0, 1.0]], np.float32)
  np.testing.assert_allclose(scale_inputs(x, 0.5, 0.5, "paper"), [[-127.5, 127.5]])
  np.testing.assert_allclose(scale_inputs(x, 0.5, 0.5, "standardized"), [[-1.0, 1.0]])
  with pytest.raises(ValueError, match="unknown scaling"):
    scale_inputs(x, 0.5, 0.5, "raw")


def test_residual_vs_plain_structure(tmp_path):
  """Reduced: depths 8 and 14, 20 steps, one seed; structure only."""
  result = _run_and_plot("residual_vs_plain", tmp_path)
  final = result.data["final_train_error"]
  assert final.keys() == {"plain8", "plain14", "resnet8", "resnet14"}
  assert result.data["num_params"]["plain14"] == result.data["num_params"]["resnet14"]
  assert result.checks[0].measured == pytest.approx(final["plain14"] - final["plain8"])
  assert result.data["resnet_depth_gain"] == pytest.approx(final["resnet8"] - final["resnet14"])


def test_densenet_vs_resnet_structure(tmp_path):
  """Reduced: two ResNets, one DenseNet, 20 steps; the recorded margin over the ResNet curve
  and the check's accuracies are recomputed here."""
  from experiments.figures.densenet_vs_resnet import interpolate_log

  result = _run_and_plot("densenet_vs_resnet", tmp_path)
  models = result.data["models"]
  res = [m for m in models.values() if m["family"] == "resnet"]
  (dense,) = [m for m in models.values() if m["family"] == "densenet"]
  expected = dense["test_accuracy"] - interpolate_log(
    dense["params"], [r["params"] for r in res], [r["test_accuracy"] for r in res]
  )
  assert result.data["mean_margin"] == pytest.approx(expected)
  assert result.checks[0].measured == [dense["test_accuracy"]]


def test_space_to_depth():
  from experiments.figures.problems import space_to_depth

  images = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
  out = space_to_depth(images, 2)
  assert out.shape == (2, 2, 2, 4)
  np.testing.assert_array_equal(out[0, 0, 0], [0, 1, 4, 5])  # the top-left 2x2 patch
  np.testing.assert_array_equal(out[1, 1, 0], images[1, 2:, :2, 0].ravel())
  np.testing.assert_array_equal(space_to_depth(images, 1), images)


def test_interpolate_log():
  from experiments.figures.densenet_vs_resnet import interpolate_log

  assert interpolate_log(100, [10, 1000], [0.5, 0.9]) == pytest.approx(0.7)
  assert interpolate_log(1, [10, 1000], [0.5, 0.9]) == pytest.approx(0.5)
  assert interpolate_log(1e6, [1000, 10], [0.9, 0.5]) == pytest.approx(0.9)


def test_fcn_helpers():
  from experiments.figures.fcn_segmentation import dihedral
  from research.models import iou_from_confusion  # what the figure's IoU comes from

  confusion = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]], np.float32)
  iou = np.asarray(iou_from_confusion(confusion))
  np.testing.assert_allclose(iou[:2], [5 / 8, 3 / 6])
  assert math.isnan(iou[2])
  x = np.arange(2 * 3 * 3).reshape(2, 3, 3, 1).astype(np.float32)
  y = x[..., 0].astype(np.int32)
  xs, ys = dihedral(x, y)
  assert xs.shape == (16, 3, 3, 1) and ys.shape == (16, 3, 3)
  np.testing.assert_array_equal(xs[..., 0], ys)  # image and labels move together
  assert len({a.tobytes() for a in ys[::2]}) == 8  # 8 distinct transforms of the first tile


@pytest.mark.slow
def test_fcn_segmentation_structure(tmp_path):
  """Reduced: 128x128 tiles without overlap, 10 steps; structure only (needs the stardist
  wheel: downloaded once into the cache). Slow: compiling three VGG-16 FCNs takes about a
  minute of CPU even at 1/32 width."""
  result = _run_and_plot("fcn_segmentation", tmp_path)
  assert result.data["classes"] == ["background", "nucleus", "boundary"]
  assert result.data["num_train_tiles"] == 8 * 12 and result.data["num_test_tiles"] == 4
  assert 0.2 < result.data["trivial_baseline_mean_iou"] < 0.4
  for variant in ("fcn32s", "fcn16s", "fcn8s"):
    r = result.data["results"][variant]
    assert len(r["iou"]) == 3 and len(r["mean_iou_curve"]) == 3
    assert 0.0 <= r["mean_iou"] <= 1.0


def test_select_keeps_and_relabels_the_classes():
  from experiments.figures.fine_tuning import select

  images = np.linspace(0, 1, 4 * 8 * 8).reshape(4, 8, 8, 1).astype(np.float32)
  labels = np.array([5, 6, 5, 9])
  x, y = select(images, labels, (5, 6, 9))
  assert y.tolist() == [0, 1, 0, 2] and x.shape == images.shape
  assert select(images, labels, (6, 9), relabel=False)[1].tolist() == [6, 9]


def test_fine_tuning_structure(tmp_path):
  """Reduced: 30 pretraining and 10 target steps, one seed: the four starts run through
  research.train.train_and_evaluate (init_from, freeze, init_layers); structure only."""
  result = _run_and_plot("fine_tuning", tmp_path)
  for key in ("test_accuracy", "final_test_accuracy"):  # best-validation and final parameters
    acc = result.data[key]
    assert acc.keys() == {"scratch", "fine-tune all", "frozen early layers", "first layers only"}
    assert all(len(v) == 1 and 0.0 <= v[0] <= 1.0 for v in acc.values())
  for runs in result.data["curves"].values():  # the validation curve of every run
    assert all(len(curve) >= 1 for curve in runs)
  assert result.data["source_test_accuracy"] > 0.5


def test_augmented_examples():
  from experiments.figures.data_augmentation import augmented_examples

  image = np.random.default_rng(0).uniform(size=(16, 24, 3)).astype(np.float32)
  out = augmented_examples(image, 3)
  assert len(out) == 7
  for name, batch in out.items():
    assert batch.shape[0] == 3 and batch.min() >= 0 and batch.max() <= 1, name
    if name.startswith("random crop"):
      assert batch.shape[1:] == (14, 14, 3)
    else:
      assert batch.shape[1:] == image.shape


def test_data_augmentation_structure(tmp_path):
  """Reduced: 200 images, 20 steps, one seed; structure only (the effects need 1,000 steps).
  The test views' centre accuracy is the final parameters' test accuracy, computed apart."""
  result = _run_and_plot("data_augmentation", tmp_path)
  assert result.data["final_val_accuracy"].keys() == {"with", "without"}
  assert result.data["test_accuracy"].keys() == {"with", "without"}
  assert len(result.data["curves"]["with"][0]["val_accuracy"]) == 3
  (views,) = result.data["test_views"]["per_seed"]
  assert views["num_views"] == 10 and 0.0 <= views["views"] <= 1.0
  assert views["centre"] == pytest.approx(
    result.data["curves"]["with"][0]["final_test_accuracy"], abs=1e-6
  )


def test_ten_views():
  from experiments.figures.data_augmentation import ten_views

  images = np.random.default_rng(0).uniform(size=(3, 6, 6, 1)).astype(np.float32)
  views = ten_views(images, 1, flips=True).reshape(3, 10, 6, 6, 1)
  np.testing.assert_array_equal(views[:, 4], images)  # the centre view is the image
  np.testing.assert_array_equal(views[:, 9], images[:, :, ::-1])  # and its mirror image
  np.testing.assert_array_equal(views[:, 0, 1:, 1:], images[:, :-1, :-1])  # shifted by (1, 1)
  assert ten_views(images, 1, flips=False).shape == (15, 6, 6, 1)
