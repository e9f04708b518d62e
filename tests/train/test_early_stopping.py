"""Early stopping on a validation metric; reduce-on-plateau advanced by evaluations."""

import os

import pytest

from research.train import metrics as metrics_lib
from research.train import train_and_evaluate
from tests.train import helpers


def test_early_stopping_and_reduce_on_plateau(tmp_path):
  # min_delta 1.0 and threshold 10: no evaluation after the first counts as an improvement.
  config = helpers.tiny_config(
    **{
      "num_train_steps": 40,
      "log_every_steps": 2,
      "eval_every_steps": 2,
      "checkpoint_every_steps": 2,
      "keep_checkpoints": 1,
      "early_stopping.patience": 3,
      "early_stopping.min_delta": 1.0,
      "optimizer.reduce_on_plateau.enabled": True,
      "optimizer.reduce_on_plateau.patience": 0,
      "optimizer.reduce_on_plateau.factor": 0.5,
      "optimizer.reduce_on_plateau.threshold": 10.0,
    }
  )
  workdir = str(tmp_path / "run")
  result = train_and_evaluate(config, workdir)
  assert result["stopped_early"] and result["step"] == 8 and result["best_step"] == 2
  records = metrics_lib.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  lr = [r["learning_rate"] for r in records if r["split"] == "train"]
  base = config.optimizer.learning_rate
  assert lr == pytest.approx([base, base, base / 2, base / 4])
  # Kept: the latest checkpoint and the best validation step (only improvements are ranked, so
  # a later tie never displaces it); the test split is evaluated on both.
  kept = sorted(int(n) for n in os.listdir(os.path.join(workdir, "checkpoints")))
  assert kept == [2, 8]
  tests = [(r["step"], r["params"]) for r in records if r["split"] == "test"]
  assert tests == [(8, "final"), (2, "best")] and result["test_step"] == 2
  # Started again: the stopped run stays stopped.
  again = train_and_evaluate(config, workdir)
  assert again["step"] == 8 and again["params_sha256"] == result["params_sha256"]
