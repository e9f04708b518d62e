"""Part-1 figures (optimization): each `run` at its `get_config("test")` size passes its checks
and fills `data`; one figure goes end to end through `python -m experiments.figures`."""

import importlib
import json

import numpy as np
import pytest

from experiments.figures import PART1
from experiments.figures import __main__ as figures_main

# Key numbers each figure must report in `data`, with the expected length of array entries.
DATA_KEYS = {
  "lr_regimes": {"critical_eta": None, "etas": 4, "iterations_to_tol": 4},
  "convergence_rates": {
    "smooth_slope_gd": None,
    "smooth_slope_nag": None,
    "rate_gd": None,
    "rate_nag": None,
  },
  "newton_vs_gd": {"order_newton": None, "order_gd": None, "newton_digits": 9},
  "line_search": {"armijo_steps": 120, "final_gap": None},
  "ill_conditioned_valley": {
    "iterations_to_tol": 8,
    "first_step_ratio": 8,
    "delta_bar_delta_rates": 150,
  },
  "optimizer_trajectories": {"beale_distance": 7, "saddle_distance": 7},
  "sgd_minibatch_logistic": {
    "variance_exponent": None,
    "variance_with_replacement": 6,
    "epochs_to_loose_gap": 4,
  },
  "lr_schedules": {"final_gap": None, "etas": None},
  "weight_decay_strong_convexity": {"slope_alpha0": None, "rates": 3},
  "saddle_escape": {"escape_gd_near": None, "escape_sgd": 8},
  "hyperparameter_search": {"grid_best": None, "random_best_mean": None, "grid": 9, "real": None},
  "rate_table": {"table": None, "kappas": 3, "kappa_slope_gd": None},
  "optimizer_facts": {"sgd_slopes": 2, "momentum_ratios": None, "stop_steps": None},
}


def test_data_keys_cover_part1():
  assert set(PART1) == set(DATA_KEYS)


@pytest.mark.parametrize("name", PART1)
def test_run_passes_at_test_size(name):
  module = importlib.import_module(f"experiments.figures.{name}")
  result = module.run(module.get_config("test"))
  failed = [(c.what, c.measured, c.expected) for c in result.checks if not c.passed]
  assert result.passed, f"{name} failed checks: {failed}"
  assert result.name == name == module.NAME
  for key, length in DATA_KEYS[name].items():
    assert key in result.data, f"{name}: data lacks {key!r}"
    if length is not None:
      assert len(np.asarray(result.data[key])) == length, (name, key)
  json.dumps(result.as_dict())  # the report entry is JSON-serializable
  if name == "rate_table":  # the regenerated table is Markdown and shown in the caption
    table = result.data["table"]
    assert table.startswith("| class of function |") and table.count("\n") == 7
    assert table in result.caption


def test_cli_builds_lr_regimes_end_to_end(tmp_path):
  code = figures_main.main(["--out", str(tmp_path), "--only", "lr_regimes"])
  assert code == 0
  assert (tmp_path / "lr_regimes.png").stat().st_size > 10_000
  entries = json.loads((tmp_path / "report.json").read_text())
  assert [e["name"] for e in entries] == ["lr_regimes"]
  entry = entries[0]
  assert {"name", "title", "passed", "checks", "data"} <= set(entry)
  assert entry["passed"] is True
  for c in entry["checks"]:
    assert set(c) == {"what", "measured", "expected", "passed"}
    assert c["passed"] is True
  assert abs(entry["data"]["critical_eta"] * 10.0 - 2.0) < 0.01
  assert "lr_regimes" in (tmp_path / "REPORT.md").read_text()


@pytest.mark.slow
def test_optimizer_trajectories_writes_png_and_gif(tmp_path):
  from PIL import Image

  module = importlib.import_module("experiments.figures.optimizer_trajectories")
  config = module.get_config()
  config.frames = 5
  paths = module.plot(module.run(config), tmp_path)
  assert sorted(p.name for p in paths) == [
    "optimizer_trajectories.gif",
    "optimizer_trajectories.png",
  ]
  with Image.open(tmp_path / "optimizer_trajectories.gif") as gif:
    assert gif.n_frames == 5


def test_cli_set_overrides_config_and_records_it(tmp_path):
  code = figures_main.main(
    [
      "--out",
      str(tmp_path),
      "--only",
      "lr_regimes",
      "--set",
      "num_steps=40",
      "--set",
      "x0=(2.0, 1.0)",
    ]
  )
  assert code in (0, 1)  # the checks were set for the default config; what matters is the run
  entry = json.loads((tmp_path / "report.json").read_text())[0]
  assert entry["config"]["num_steps"] == 40 and tuple(entry["config"]["x0"]) == (2.0, 1.0)
  assert "--set num_steps=40 x0=(2.0, 1.0)" in (tmp_path / "REPORT.md").read_text()


@pytest.mark.parametrize(
  "item, message",
  [
    ("bogus=1", "figure 'lr_regimes' has no config field 'bogus'"),
    ("num_steps=many", "--set num_steps='many' for figure 'lr_regimes'"),
  ],
)
def test_cli_set_rejects_bad_overrides_before_running(tmp_path, capsys, item, message):
  out = tmp_path / "out"
  assert figures_main.main(["--out", str(out), "--only", "lr_regimes", "--set", item]) == 2
  assert message in capsys.readouterr().err
  assert not out.exists()  # nothing ran, nothing written


def test_cli_set_needs_key_value():
  with pytest.raises(SystemExit):
    figures_main.main(["--out", "unused", "--set", "num_steps"])


def test_cli_size_picks_each_figures_config_and_is_recorded(tmp_path):
  code = figures_main.main(["--out", str(tmp_path), "--only", "lr_regimes", "--size", "test"])
  assert code == 0
  entry = json.loads((tmp_path / "report.json").read_text())[0]
  assert entry["config"]["bisect_steps"] == 500  # lr_regimes.get_config("test")
  report = (tmp_path / "REPORT.md").read_text()
  assert "(test size)" in report and "--out DIR --size test`" in report


def test_cli_full_is_size_full_and_conflicts_with_another_size(capsys):
  assert figures_main._parse(["--out", "unused", "--full"]).size == "full"
  assert figures_main._parse(["--out", "unused", "--full", "--size", "full"]).size == "full"
  assert figures_main._parse(["--out", "unused"]).size == "default"
  with pytest.raises(SystemExit):
    figures_main._parse(["--out", "unused", "--full", "--size", "test"])
  assert "--full means --size full" in capsys.readouterr().err
