"""Bad input and faults: each a clear message, before compilation where possible."""

import glob
import os

import numpy as np
import pytest

from research.train import DivergenceError, NonFiniteLossError, train_and_evaluate
from research.train import workdir as workdir_lib
from research.train.checkpoint import CheckpointMismatchError
from tests.train import helpers


@pytest.mark.parametrize(
  "overrides, message",
  [
    ({"model.name": "resnet7"}, "unknown model 'resnet7'"),
    ({"optimizer.name": "adamw2"}, "optimizer.name='adamw2' is unknown"),
    ({"dataset.name": "no_such_data"}, "no_such_data"),
    ({"optimizer.learning_rate": 0.0}, "learning_rate=0.0 must be a positive"),
    ({"optimizer.learning_rate": -0.1}, "learning_rate=-0.1 must be a positive"),
    ({"batch_size": 12}, "12"),
    ({"num_train_steps": 0}, "num_train_steps=0"),
    ({"loss": "hinge2"}, "loss='hinge2' is unknown"),
    ({"early_stopping.metric": "mean_iou"}, "early_stopping.metric='mean_iou'"),
    ({"freeze": "(unclosed"}, "not a valid regex"),
    ({"num_devices": 16}, "num_devices=16"),
    ({"eval_batch_size": -8}, "eval_batch_size=-8"),
  ],
)
def test_bad_config_fails_before_anything_is_written(overrides, message, tmp_path):
  workdir = str(tmp_path / "run")
  with pytest.raises(ValueError, match=None) as info:
    train_and_evaluate(helpers.tiny_config(**overrides), workdir)
  assert message in str(info.value)
  assert not os.path.exists(os.path.join(workdir, "checkpoints"))


def test_batch_not_divisible_names_the_numbers(tmp_path):
  with pytest.raises(ValueError) as info:
    train_and_evaluate(helpers.tiny_config(batch_size=12), str(tmp_path))
  assert "12" in str(info.value) and "8" in str(info.value)


def test_workdir_with_a_different_config_is_refused(tiny_run_copy):
  workdir, _ = tiny_run_copy
  with pytest.raises(ValueError, match="different config") as info:
    train_and_evaluate(helpers.tiny_config(**{"optimizer.learning_rate": 0.5}), workdir)
  assert "optimizer.learning_rate" in str(info.value)


def test_nan_loss_stops_with_the_step_and_saves_no_bad_state(tmp_path):
  # A checkpoint every step: the state of the step whose loss is NaN must never be saved.
  config = helpers.tiny_config(
    **{"optimizer.name": "sgd", "optimizer.learning_rate": 1e30, "checkpoint_every_steps": 1}
  )
  with pytest.raises(NonFiniteLossError, match=r"at step \d+") as info:
    train_and_evaluate(config, str(tmp_path))
  assert "skip_nonfinite" in str(info.value)
  bad_step = int(str(info.value).split("at step ")[1].split(";")[0])
  saved = sorted(int(n) for n in os.listdir(tmp_path / "checkpoints"))
  assert saved and max(saved) < bad_step
  assert all(np.isfinite(v).all() for v in helpers.final_params(str(tmp_path)).values())


def test_skipping_nonfinite_steps_stops_after_too_many_in_a_row(tmp_path):
  config = helpers.tiny_config(
    **{
      "optimizer.name": "sgd",
      "optimizer.learning_rate": 1e30,
      "optimizer.skip_nonfinite": True,
      "optimizer.max_skipped_steps": 2,
    }
  )
  with pytest.raises(NonFiniteLossError, match=r"max_skipped_steps=2 steps in a row"):
    train_and_evaluate(config, str(tmp_path / "run"))


def test_sgd_at_a_huge_rate_with_skipping_does_not_end_as_success(tmp_path):
  """The issue's row: 18 of 20 steps skipped, eval loss nan, exit 0. Now it stops."""
  config = helpers.tiny_config(
    **{"optimizer.name": "sgd", "optimizer.learning_rate": 1e6, "optimizer.skip_nonfinite": True}
  )
  with pytest.raises(DivergenceError):
    train_and_evaluate(config, str(tmp_path / "run"))


def test_exploding_but_finite_loss_is_divergence(tmp_path):
  """Adam at lr 1e6: the loss stays finite (4e20) but is far above its first value."""
  config = helpers.tiny_config(**{"optimizer.learning_rate": 1e6, "num_train_steps": 40})
  with pytest.raises(DivergenceError, match=r"exceeds optimizer.max_loss_factor=100") as info:
    train_and_evaluate(config, str(tmp_path / "run"))
  message = str(info.value)
  if "checkpoints up to step" in message:  # names a step that exists
    step = int(message.split("checkpoints up to step ")[1].split(" ")[0])
    assert os.path.isdir(tmp_path / "run" / "checkpoints" / str(step))
  else:
    assert "no checkpoint has been saved yet" in message


def _damage(workdir: str, step: int, how: str) -> list[str]:
  files = [
    f
    for f in glob.glob(
      os.path.join(workdir, "checkpoints", str(step), "state", "**", "*"), recursive=True
    )
    if os.path.isfile(f) and "/d/" in f
  ]
  assert files
  for f in files:
    if how == "garbage":
      with open(f, "wb") as handle:
        handle.write(b"not a checkpoint")
    elif how == "truncated":
      os.truncate(f, os.path.getsize(f) // 2)
    else:  # emptied
      os.truncate(f, 0)
  return files


@pytest.mark.parametrize("how", ["garbage", "truncated", "emptied"])
def test_damaged_latest_checkpoint_falls_back_to_the_previous(how, tiny_run_copy, capsys):
  workdir, _ = tiny_run_copy
  _damage(workdir, 20, how)
  result = train_and_evaluate(helpers.tiny_config(num_train_steps=30), workdir)
  out = capsys.readouterr().out
  assert "checkpoint at step 20 is unreadable" in out and "resumed from" in out
  assert out.index("unreadable") < out.index("resumed from")
  assert f"{workdir}/checkpoints/10" in out
  moved = glob.glob(os.path.join(workdir, "checkpoints_corrupt", "20.*"))
  assert len(moved) == 1 and os.path.isdir(os.path.join(moved[0], "state"))
  assert result["step"] == 30


def test_moved_aside_checkpoints_are_never_deleted(tiny_run_copy):
  workdir, _ = tiny_run_copy
  _damage(workdir, 20, "garbage")
  train_and_evaluate(helpers.tiny_config(), workdir)  # moves 20 aside, retrains 10 -> 20
  _damage(workdir, 20, "emptied")
  train_and_evaluate(helpers.tiny_config(), workdir)  # moves the new 20 aside too
  assert len(glob.glob(os.path.join(workdir, "checkpoints_corrupt", "20.*"))) == 2


def test_checkpoint_of_another_model_is_refused_and_nothing_moves(tiny_run_copy):
  workdir, _ = tiny_run_copy
  os.remove(os.path.join(workdir, "config.json"))  # so only the checkpoint can tell
  before = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
  with pytest.raises(CheckpointMismatchError, match=r"does not fit this config") as info:
    train_and_evaluate(helpers.tiny_config(**{"model.width": 48}), workdir)
  assert "params/dense_0/kernel: checkpoint float32[64, 32], config float32[64, 48]" in str(
    info.value
  )
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == before
  assert not os.path.exists(os.path.join(workdir, "checkpoints_corrupt"))
  assert not os.path.exists(os.path.join(workdir, "config.json"))  # the failed start wrote none


def test_a_start_that_fails_a_data_check_writes_nothing(tmp_path):
  workdir = tmp_path / "run"
  with pytest.raises(ValueError, match=r"batch_size=4096 needs"):
    train_and_evaluate(helpers.tiny_config(batch_size=4096), str(workdir))
  assert not workdir.exists()
  assert train_and_evaluate(helpers.tiny_config(), str(workdir))["step"] == 20


def test_a_second_run_on_the_same_workdir_is_refused(tmp_path):
  workdir = str(tmp_path / "run")
  lock = workdir_lib.Lock(workdir).acquire()  # as a live run holds it
  try:
    with pytest.raises(workdir_lib.WorkdirBusyError, match=rf"in use by pid {os.getpid()} on "):
      train_and_evaluate(helpers.tiny_config(), workdir)
  finally:
    lock.release()
  assert train_and_evaluate(helpers.tiny_config(), workdir)["step"] == 20


def test_object_storage_workdir_is_refused_with_the_fix():
  with pytest.raises(ValueError, match="gcsfuse"):
    train_and_evaluate(helpers.tiny_config(), "gs://bucket/run")


def test_partial_checkpoint_left_by_a_killed_save_is_ignored(tiny_run_copy):
  workdir, result = tiny_run_copy
  partial = os.path.join(workdir, "checkpoints", "30.orbax-checkpoint-tmp", "state")
  os.makedirs(partial)
  with open(os.path.join(partial, "manifest.ocdbt"), "wb") as f:
    f.write(b"half written")
  again = train_and_evaluate(helpers.tiny_config(), workdir)
  assert again["step"] == 20 and again["params_sha256"] == result["params_sha256"]
  assert not os.path.exists(os.path.dirname(partial))
