"""The contract every figure module shares (`experiments.figures.common`): three config sizes,
one plotting helper, and shared code that comes from the shared modules, never from another
figure."""

import ast
import importlib
import pathlib

import ml_collections
import pytest

from experiments.figures import FIGURES, common

FIGURES_DIR = pathlib.Path(common.__file__).parent


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_offers_the_three_sizes(name):
  module = importlib.import_module(f"experiments.figures.{name}")
  configs = {size: module.get_config(size) for size in common.SIZES}
  assert all(isinstance(c, ml_collections.ConfigDict) for c in configs.values())
  assert module.get_config().to_dict() == configs["default"].to_dict()
  assert set(configs["test"].keys()) == set(configs["default"].keys())
  with pytest.raises(
    ValueError,
    match=r"unknown size 'huge'; choose from 'test', 'default', "
    r"'full'",
  ):
    module.get_config("huge")


def test_sized_merges_overrides_over_the_default():
  default = {"steps": 100, "grid": {"a": (1, 2)}, "seed": 0}
  assert common.sized("default", default, test={"steps": 3}).to_dict() == default
  test = common.sized("test", default, test={"steps": 3, "grid": {"b": (3,)}}).to_dict()
  assert test == {"steps": 3, "grid": {"a": (1, 2), "b": (3,)}, "seed": 0}
  assert common.sized("full", default).to_dict() == default
  with pytest.raises(ValueError, match=r"size 'full' overrides \['stpes'\]"):
    common.sized("full", default, full={"stpes": 3})


def test_plotting_helpers_write_a_png_without_pyplot(tmp_path):
  fig, axes = common.subplots(1, 2, panel=(3.0, 2.0), title="two panels")
  assert axes.shape == (2,) and tuple(fig.get_size_inches()) == (6.0, 2.0)
  axes[0].plot([0, 1], [1, 0])
  path = common.save_figure(fig, tmp_path / "sub", "demo")
  assert path == tmp_path / "sub" / "demo.png" and path.stat().st_size > 1000
  fig = common.figure((4.0, 3.0))
  fig.add_gridspec(1, 1)
  assert common.save_figure(fig, tmp_path, "empty", tight=False).exists()


def _imported_modules(path: pathlib.Path) -> set[str]:
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f"{node.module}.{a.name}" for a in node.names)
  return names


def test_no_figure_imports_another_figure():
  figures = {f"experiments.figures.{name}" for name in FIGURES}
  bad = {
    path.name: sorted(_imported_modules(path) & figures)
    for path in sorted(FIGURES_DIR.glob("*.py"))
  }
  assert not {k: v for k, v in bad.items() if v}, bad


def test_figures_draw_only_through_the_common_helpers():
  """Every `plot` makes its figure with common.subplots / common.figure (no pyplot)."""
  bad = [
    path.name
    for path in sorted(FIGURES_DIR.glob("*.py"))
    if "matplotlib.pyplot" in _imported_modules(path)
  ]
  assert not bad, bad


def test_every_training_figure_states_the_paper_beside_ours(tmp_path):
  import importlib
  import json

  from experiments import figures
  from experiments.figures import __main__ as figures_main
  from experiments.figures import common

  assert set(figures.TRAINING) <= set(figures.FIGURES)
  for name in figures.TRAINING:
    paper = importlib.import_module(f"experiments.figures.{name}").PAPER
    assert isinstance(paper, common.Paper), name
    assert all(len(getattr(paper, k)) > 10 for k in ("source", "setup", "number")), name
  code = figures_main.main(
    ["--out", str(tmp_path), "--only", "zero_init_symmetry", "--size", "test"]
  )
  assert code in (0, 1)
  entry = json.loads((tmp_path / "report.json").read_text())[0]
  assert entry["paper"]["source"].startswith("the lecture, notes 004")
  assert f"| paper | {entry['paper']['source']} |" in (tmp_path / "REPORT.md").read_text()


def test_batch_norm_backward_by_hand_matches_autodiff():
  from experiments.figures import batch_norm

  worst, printed = batch_norm.bn_backward_errors(seed=3, batch=7, units=3)
  assert worst < 1e-9
  assert printed > 1e-3  # the notes' printed dDiv/dsigma^2 lacks the factor (z_i - mu_B)
