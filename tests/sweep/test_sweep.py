"""research.sweep: the search space, vectorized trials equal to research.main runs, resume,
outputs (ranked by validation, the chosen trial's test once), coarse to fine, and the command's
errors."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from research.sweep import run as run_lib
from research.sweep import space, vectorized
from research.train import checkpoint, train_and_evaluate
from tests.train import helpers


def _config(**overrides):
  return helpers.tiny_config(**{"model.dropout_rate": 0.0, **overrides})


def test_space_parsing_and_its_errors():
  config = _config()
  d = space.parse("optimizer.learning_rate=loguniform(1e-4,1e-1)", config)
  assert d.kind == "loguniform" and d.values == (1e-4, 1e-1) and d.log
  assert space.parse("optimizer.name=choice(sgd,adam)", config).values == ("sgd", "adam")
  for text, message in [
    ("optimizer.learnin_rate=uniform(0,1)", "no key 'optimizer.learnin_rate'"),
    ("optimizer.learning_rate=loguniform(0,1)", "needs 0 < lo"),
    ("optimizer.learning_rate=uniform(1,1)", "is empty"),
    ("optimizer.learning_rate=normal(0,1)", "unknown distribution 'normal'"),
    ("optimizer.learning_rate=uniform(0.1)", "takes two numbers"),
    ("optimizer.learning_rate=0.1", "is not KEY=DISTRIBUTION"),
    ("batch_size=uniform(8,64)", "is an integer"),
  ]:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
      space.parse(text, config)


def test_grid_and_random_points():
  config = _config()
  lr = space.parse("optimizer.learning_rate=loguniform(1e-4,1e-2)", config)
  seed = space.parse("seed=grid(0,1,2)", config)
  grid = space.grid_points([lr, seed], 10)
  assert len(grid) == 9 and sorted({p["seed"] for p in grid}) == [0, 1, 2]
  np.testing.assert_allclose(
    sorted({p["optimizer.learning_rate"] for p in grid}), [1e-4, 1e-3, 1e-2]
  )
  a = space.random_points([lr, seed], 9, seed=3)
  assert a == space.random_points([lr, seed], 9, seed=3) and len(a) == 9
  assert len({p["optimizer.learning_rate"] for p in a}) == 9  # one rate per trial
  assert all(1e-4 <= p["optimizer.learning_rate"] <= 1e-2 for p in a)
  narrow = space.refined([lr, seed], a[:2])
  lo, hi = narrow[0].values
  assert 1e-4 <= lo <= min(p["optimizer.learning_rate"] for p in a[:2])
  assert max(p["optimizer.learning_rate"] for p in a[:2]) <= hi <= 1e-2


def _trial_params(chunk_dir, trial):
  params = vectorized.load_stacked(chunk_dir, "train")["params"]
  return jax.tree.map(lambda x: np.asarray(x)[trial], params)


@pytest.mark.parametrize(
  "overrides, points",
  [
    ({}, [{"optimizer.learning_rate": 1e-3}, {"optimizer.learning_rate": 3e-2}]),
    (
      {"optimizer.name": "heavy_ball", "optimizer.learning_rate": 0.05},
      [{"optimizer.beta": 0.5}, {"optimizer.beta": 0.95}],
    ),
    (
      {"optimizer.weight_decay": 1e-3},
      [{"optimizer.weight_decay": 1e-4}, {"optimizer.weight_decay": 3e-2}],
    ),
    ({"model.dropout_rate": 0.1}, [{"seed": 0}, {"seed": 5}]),
  ],
)
def test_vectorized_trial_i_ends_as_research_main_with_its_values(overrides, points, tmp_path):
  config = _config(**overrides)
  configs = vectorized.trial_configs(config, points)
  assert (
    vectorized.vectorizable(config, [space.Dimension(k, "grid", ()) for k in points[0]], points)
    is None
  )
  chunk = str(tmp_path / "chunk")
  os.makedirs(chunk)
  results = vectorized.run_chunk(configs, chunk, log=lambda _: None)
  singles = []
  for i, cfg in enumerate(configs):
    alone = str(tmp_path / f"alone{i}")
    single = train_and_evaluate(cfg, alone)
    singles.append(single)
    mine = _trial_params(chunk, i)
    theirs = checkpoint.load_variables(alone)["params"]
    for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs), strict=True):
      np.testing.assert_allclose(a, np.asarray(b), rtol=2e-4, atol=2e-5)
    for key in ("validation_accuracy", "best_validation_accuracy"):
      assert results[i][key] == pytest.approx(single[key], abs=1e-6)
    assert results[i]["best_step"] == single["best_step"]
    assert not any(k.startswith("test_") for k in results[i])  # no test split while training
  # the chosen trial's test, once after the choice, on its best-validation parameters, is
  # research.main's test number (of its best-validation checkpoint)
  test = vectorized.evaluate_test(configs[0], chunk, 0, results[0]["best_step"])
  assert singles[0]["test_step"] == results[0]["best_step"]
  assert test["accuracy"] == pytest.approx(singles[0]["test_accuracy"], abs=1e-6)


def _test_rows(workdir) -> list[dict]:
  path = os.path.join(workdir, "metrics.jsonl")
  rows = [json.loads(x) for x in open(path).read().splitlines()]
  return [r for r in rows if r["split"] == "test"]


def test_auto_mode_runs_shape_changing_keys_one_after_another(tmp_path):
  config = _config(num_train_steps=10)
  dims = [space.parse("model.width=choice(16,24)", config)]
  with pytest.raises(ValueError, match=r"--mode=vectorized: model.width changes"):
    run_lib.Sweep(
      config, str(tmp_path / "v"), dims, method="grid", trials=2, seed=0, mode="vectorized"
    )
  sweep = run_lib.Sweep(
    config,
    str(tmp_path / "a"),
    dims,
    method="grid",
    trials=2,
    seed=0,
    mode="auto",
    log=lambda _: None,
  )
  records = sweep.run()
  assert [r["mode"] for r in records] == ["sequential", "sequential"]
  assert all(os.path.isdir(tmp_path / "a" / f"trial_{i:03d}" / "checkpoints") for i in (0, 1))
  # trials ran with validation only; the chosen one's run then evaluated its test split once
  best = run_lib.chosen(records, "accuracy", "max")
  assert [r["chosen"] for r in records] == [r["trial"] == best["trial"] for r in records]
  assert [("test_accuracy" in r) for r in records] == [r["chosen"] for r in records]
  for r in records:
    rows = _test_rows(tmp_path / "a" / f"trial_{r['trial']:03d}")
    assert len(rows) == (2 if r["chosen"] else 0)  # its final and best-validation parameters
  tested = _test_rows(tmp_path / "a" / f"trial_{best['trial']:03d}")
  (row,) = [x for x in tested if x["params"] == "best"]
  assert best["test_accuracy"] == row["accuracy"] and best["test_step"] == row["step"]


SWEEP = (
  "--space=optimizer.learning_rate=loguniform(1e-4,1e-1)",
  "--space=seed=grid(0,1)",
  "--method=random",
  "--trials=6",
)


def _sweep(workdir, *flags, **kwargs):
  return subprocess.Popen(
    [
      sys.executable,
      "-m",
      "research.sweep",
      f"--config={helpers.CONFIG_FILE}:test",
      f"--workdir={workdir}",
      *SWEEP,
      *flags,
    ],
    cwd=helpers.REPO,
    env=helpers.env(),
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    **kwargs,
  )


def _lines(workdir) -> list[dict]:
  return [json.loads(x) for x in (workdir / "trials.jsonl").read_text().splitlines()]


def test_sweep_command_outputs_and_a_finished_sweep_only_reports(tmp_path):
  workdir = tmp_path / "sweep"
  out, err = _sweep(workdir).communicate(timeout=300)
  assert "chosen: trial" in out, err[-3000:]
  lines = _lines(workdir)
  assert [r["trial"] for r in lines] == list(range(6))
  keys = {"trial", "overrides", "validation_accuracy", "best_validation_accuracy", "best_step"}
  assert keys | {"mode", "chosen", "num_examples"} <= set(lines[0])
  assert all(r["mode"] == "vectorized" for r in lines)
  assert (workdir / "sweep.png").stat().st_size > 10_000
  from experiments.configs import from_json

  best = from_json.get_config(str(workdir / "best_config.json"))
  top = run_lib.ranked(lines, "accuracy", "max")[0]
  assert best.optimizer.learning_rate == pytest.approx(top["overrides"]["optimizer.learning_rate"])
  # the test number: the chosen trial's only, evaluated once, named as such everywhere
  assert [r["trial"] for r in lines if "test_accuracy" in r] == [top["trial"]]
  assert top["chosen"] and top["test_step"] == top["best_step"]
  assert "validation accuracy" in out and "test accuracy" in out
  assert f"test accuracy {top['test_accuracy']:.4f}" in out
  (chunk,) = [p for p in workdir.iterdir() if p.name.startswith("stage1_")]
  assert [(r["trial"], r["params"]) for r in _test_rows(chunk)] == [(top["trial"], "best")]
  again, _ = _sweep(workdir).communicate(timeout=300)
  assert "to run" not in again and "chosen: trial" in again
  assert "evaluating its test split" not in again  # read back, not evaluated a second time
  assert _lines(workdir) == lines


def test_coarse_to_fine_trains_each_stage_its_epochs_and_chooses_in_the_fine_stage(tmp_path):
  workdir = tmp_path / "sweep"
  flags = ("--refine=2", "--coarse_epochs=0.1", "--fine_epochs=0.25")
  out, err = _sweep(workdir, *flags).communicate(timeout=300)
  assert "chosen: trial" in out, err[-3000:]
  lines = _lines(workdir)
  coarse, fine = ([r for r in lines if r["stage"] == s] for s in (1, 2))
  assert len(coarse) == len(fine) == 6
  n = lines[0]["num_examples"]["train"]  # the training split less the validation set
  assert n == 1150
  assert {r["steps"] for r in coarse} == {math.ceil(0.1 * n / 16)}  # batch 16 (mlp_digits:test)
  assert {r["steps"] for r in fine} == {math.ceil(0.25 * n / 16)}
  assert {r["epochs"] for r in coarse} == {0.1} and {r["epochs"] for r in fine} == {0.25}
  assert "stage 1 (coarse): 0.1 epochs = 8 steps; stage 2 (fine): 0.25 epochs = 18 steps" in out
  # the fine stage samples inside the range of the 2 best coarse trials by validation
  seeds = run_lib.ranked(coarse, "accuracy", "max")[:2]
  lrs = [r["overrides"]["optimizer.learning_rate"] for r in seeds]
  lo, hi = space.refined(
    [space.parse("optimizer.learning_rate=loguniform(1e-4,1e-1)", _config())],
    [r["overrides"] for r in seeds],
  )[0].values
  assert lo <= min(lrs) and max(lrs) <= hi
  assert all(lo <= r["overrides"]["optimizer.learning_rate"] <= hi for r in fine)
  # chosen: the fine stage's best by validation; its test evaluated once; its config's length
  top = run_lib.ranked(fine, "accuracy", "max")[0]
  assert [r["trial"] for r in lines if r["chosen"]] == [top["trial"]]
  assert [r["trial"] for r in lines if "test_accuracy" in r] == [top["trial"]]
  best = json.loads((workdir / "best_config.json").read_text())
  assert best["num_train_steps"] == top["steps"]
  assert out.index("stage 2 (fine, 0.25 epochs each):") < out.index("stage 1 (coarse, 0.1 epochs")


def test_killed_sweep_resumes_to_the_uninterrupted_result(tmp_path):
  longer = (
    "--config.num_train_steps=600",
    "--config.checkpoint_every_steps=20",
    "--config.eval_every_steps=200",
    "--config.steps_per_dispatch=10",
    "--config.log_every_steps=10",
  )
  killed = tmp_path / "killed"
  proc = _sweep(killed, *longer)
  deadline = time.monotonic() + 200
  while time.monotonic() < deadline and not list(killed.glob("stage1_*/checkpoints/[0-9]*")):
    time.sleep(0.1)
  time.sleep(1.0)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (killed / "trials.jsonl").exists()
  out, err = _sweep(killed, *longer).communicate(timeout=400)
  assert "chosen: trial" in out, err[-3000:]
  whole = tmp_path / "whole"
  _sweep(whole, *longer).communicate(timeout=400)
  read = lambda d: [json.loads(x) for x in (d / "trials.jsonl").read_text().splitlines()]
  assert [r["params_sha256"] for r in read(killed)] == [r["params_sha256"] for r in read(whole)]
  assert [r.get("test_accuracy") for r in read(killed)] == [
    r.get("test_accuracy") for r in read(whole)
  ]


@pytest.mark.parametrize(
  "flag, message",
  [
    ("--space=optimizer.learnin_rate=uniform(0,1)", "no key 'optimizer.learnin_rate'"),
    ("--space=optimizer.learning_rate=loguniform(-1,1)", "needs 0 < lo"),
    ("--space=optimizer.learning_rate=uniform(2,1)", "is empty"),
  ],
)
def test_sweep_errors_are_one_line_before_anything_runs(flag, message, tmp_path):
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "research.sweep",
      f"--config={helpers.CONFIG_FILE}:test",
      f"--workdir={tmp_path}/s",
      flag,
    ],
    cwd=helpers.REPO,
    env=helpers.env(),
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
  assert not os.path.exists(tmp_path / "s")


def test_sweep_benchmark_runs_and_the_modes_find_the_same_best(tmp_path):
  """A smoke run of experiments/benchmarks/sweep.py (timings are never asserted): the same
  trials run vectorized, in-process sequential and as research.main processes find the same
  best trial."""
  out = tmp_path / "sweep.json"
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.benchmarks.sweep",
      "--trials=2",
      "--steps=10",
      f"--json={out}",
    ],
    cwd=helpers.REPO,
    env=helpers.env(),
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  modes = json.loads(out.read_text())
  assert set(modes) == {"vectorized", "sequential", "processes"}
  best = {m: (r["best_learning_rate"], r["best_validation_accuracy"]) for m, r in modes.items()}
  assert best["sequential"] == best["processes"]
  assert best["vectorized"][0] == best["sequential"][0]
  assert abs(best["vectorized"][1] - best["sequential"][1]) <= 1 / 287 + 1e-9  # one example
  assert all(0 < r["chosen_test_accuracy"] <= 1 for r in modes.values())
  assert "processes / vectorized wall time" in result.stdout
