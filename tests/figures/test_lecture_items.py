"""The lecture-item figures `backprop` and `linear_depth`: each `run` at its test size passes its
checks, and their hand computations (the backward pass, the gate rules, the best line, the
affine collapse, the boundary measures) give the numbers worked out here."""

import importlib

import jax
import numpy as np
import pytest

from experiments.figures import backprop, linear_depth

DATA_KEYS = {
  "backprop": ("graphs", "gates", "max_error"),
  "linear_depth": ("xor", "collapse", "spirals", "widths"),
}


@pytest.mark.parametrize("name", sorted(DATA_KEYS))
def test_figure_passes_at_test_size(name):
  module = importlib.import_module(f"experiments.figures.{name}")
  result = module.run(module.get_config("test"))
  failed = [c.as_dict() for c in result.checks if not c.passed]
  assert result.passed, f"{name}: failed checks {failed}"
  assert all(key in result.data for key in DATA_KEYS[name]), name
  assert result.paper is module.PAPER and result.paper.source.startswith("the lecture, notes 004")


def test_backward_pass_of_x_plus_y_squared_by_hand():
  """f = (x + y)^2 at x = 1, y = 2: q = 3, f = 9, df/dq = 2q = 6 = df/dx = df/dy; as q * q
  the copy gate sends 3 back along each branch and sums them to the same 6."""
  for graph in (backprop.SQUARE, backprop.COPY):
    values = backprop.forward(graph, backprop.SQUARE_INPUTS)
    grads, edges = backprop.backward(graph, values)
    assert (values["q"], values["f"]) == (3.0, 9.0)
    assert (grads["f"], grads["q"], grads["x"], grads["y"]) == (1.0, 6.0, 6.0, 6.0)
  _, edges = backprop.backward(backprop.COPY, backprop.forward(backprop.COPY, {"x": 1.0, "y": 2.0}))
  assert sorted(e[3] for e in edges if e[:2] == ("q", "f")) == [3.0, 3.0]


def test_sigmoid_neuron_gradients_match_the_worked_example_and_autodiff():
  inputs = backprop.SIGMOID_INPUTS
  values = backprop.forward(backprop.SIGMOID_FINE, inputs)
  grads, _ = backprop.backward(backprop.SIGMOID_FINE, values)
  f = values["f"]
  assert f == pytest.approx(1.0 / (1.0 + np.exp(-1.0)))  # w0 x0 + w1 x1 + w2 = -2 + 6 - 3 = 1
  ds = (1.0 - f) * f  # sigma' = (1 - sigma) sigma
  expected = {"w0": ds * -1.0, "x0": ds * 2.0, "w1": ds * -2.0, "x1": ds * -3.0, "w2": ds}
  for name, value in expected.items():
    assert grads[name] == pytest.approx(value, abs=1e-15), name
  auto = backprop.autodiff_gradients(backprop.SIGMOID_FINE, inputs)
  assert max(abs(grads[k] - auto[k]) for k in grads) < 1e-12


def test_gate_rules():
  a, b, g = np.array([2.0, -1.0]), np.array([-1.0, 3.0]), np.array([5.0, 7.0])
  assert [t.tolist() for t in backprop.gate_rule("add", a, b, g)] == [[5, 7], [5, 7]]
  assert [t.tolist() for t in backprop.gate_rule("mul", a, b, g)] == [[-5, 21], [10, -7]]
  assert [t.tolist() for t in backprop.gate_rule("max", a, b, g)] == [[5, 0], [0, 7]]
  assert backprop.gate_rule("copy", a, b, g)[0].tolist() == [4.0, 10.0]  # g1 + g2
  for gate in ("add", "mul", "max", "copy"):
    auto = backprop.gate_autodiff(gate, a, b, g)
    assert backprop.gate_holds(gate, a, b, g, auto), gate


def test_best_line_on_xor_separable_and_collinear_points():
  assert linear_depth.best_linear_accuracy(linear_depth.XOR_X, linear_depth.XOR_Y) == 0.75
  rng = np.random.default_rng(0)
  x = rng.normal(size=(60, 2))
  y = (x @ np.array([1.0, -2.0]) + 0.3 > 0).astype(int)
  assert linear_depth.best_linear_accuracy(x, y) == 1.0
  # five points on a line labelled 0 0 1 1 0: a line splits them into two runs, 4 of 5 right
  x = np.stack([np.arange(5.0), 2 * np.arange(5.0)], -1)
  assert linear_depth.best_linear_accuracy(x, np.array([0, 0, 1, 1, 0])) == 0.8


def test_collapse_is_the_notes_formula():
  rng = np.random.default_rng(1)
  w1, w2, w3 = rng.normal(size=(4, 2)), rng.normal(size=(5, 4)), rng.normal(size=(3, 5))
  b1, b2, b3 = rng.normal(size=4), rng.normal(size=5), rng.normal(size=3)
  w, b = linear_depth.collapse([(w1, b1), (w2, b2), (w3, b3)])
  np.testing.assert_allclose(w, w3 @ w2 @ w1)
  np.testing.assert_allclose(b, w3 @ (w2 @ b1 + b2) + b3)
  np.testing.assert_allclose(b, w3 @ w2 @ b1 + w3 @ b2 + b3)
  x = rng.normal(size=(7, 2))
  layered = ((x @ w1.T + b1) @ w2.T + b2) @ w3.T + b3
  np.testing.assert_allclose(x @ w.T + b, layered)


def test_dense_layers_reads_a_research_mlp_in_order():
  from research.models import create

  model = create("mlp", num_classes=3, widths=(4, 5), activation="identity")
  x = np.ones((2, 6), np.float32)
  params = model.init(jax.random.key(0), x)["params"]
  shapes = [w.shape for w, _ in linear_depth.dense_layers(params)]
  assert shapes == [(4, 6), (5, 4), (3, 5)]


def test_boundary_measures_of_a_straight_boundary():
  """A vertical boundary through a 10 x 10 grid of spacing 1: 10 horizontal crossings (length
  10), one linear piece when the whole grid has one ReLU pattern, two when it has two."""
  labels = np.zeros((10, 10), int)
  labels[:, 5:] = 1
  one = linear_depth.boundary_measures(labels, np.zeros((10, 10), int), (1.0, 1.0))
  assert one == {"length": 10.0, "pieces": 1, "crossings": 10}
  patterns = np.zeros((10, 10), int)
  patterns[5:] = 1
  assert linear_depth.boundary_measures(labels, patterns, (1.0, 1.0))["pieces"] == 2
