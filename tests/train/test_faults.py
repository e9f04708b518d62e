"""Bad input and faults: each a clear message, before compilation where possible."""

import glob
import os

import numpy as np
import pytest

from research.train import NonFiniteLossError, train_and_evaluate
from tests.train import helpers


@pytest.mark.parametrize('overrides, message', [
    ({'model.name': 'resnet7'}, "unknown model 'resnet7'"),
    ({'optimizer.name': 'adamw2'}, "optimizer.name='adamw2' is unknown"),
    ({'dataset.name': 'no_such_data'}, 'no_such_data'),
    ({'optimizer.learning_rate': 0.0}, 'learning_rate=0.0 must be a positive'),
    ({'optimizer.learning_rate': -0.1}, 'learning_rate=-0.1 must be a positive'),
    ({'batch_size': 12}, '12'),
    ({'num_train_steps': 0}, 'num_train_steps=0'),
    ({'loss': 'hinge2'}, "loss='hinge2' is unknown"),
    ({'early_stopping.metric': 'mean_iou'}, "early_stopping.metric='mean_iou'"),
    ({'freeze': '(unclosed'}, 'not a valid regex'),
    ({'num_devices': 16}, 'num_devices=16'),
    ({'eval_batch_size': -8}, 'eval_batch_size=-8'),
])
def test_bad_config_fails_before_anything_is_written(overrides, message, tmp_path):
  workdir = str(tmp_path / 'run')
  with pytest.raises(ValueError, match=None) as info:
    train_and_evaluate(helpers.tiny_config(**overrides), workdir)
  assert message in str(info.value)
  assert not os.path.exists(os.path.join(workdir, 'checkpoints'))


def test_batch_not_divisible_names_the_numbers(tmp_path):
  with pytest.raises(ValueError) as info:
    train_and_evaluate(helpers.tiny_config(batch_size=12), str(tmp_path))
  assert '12' in str(info.value) and '8' in str(info.value)


def test_workdir_with_a_different_config_is_refused(tiny_run_copy):
  workdir, _ = tiny_run_copy
  with pytest.raises(ValueError, match='different config') as info:
    train_and_evaluate(helpers.tiny_config(**{'optimizer.learning_rate': 0.5}), workdir)
  assert 'optimizer.learning_rate' in str(info.value)


def test_nan_loss_stops_with_the_step_and_saves_no_bad_state(tmp_path):
  # A checkpoint every step: the state of the step whose loss is NaN must never be saved.
  config = helpers.tiny_config(**{'optimizer.name': 'sgd', 'optimizer.learning_rate': 1e30,
                                  'checkpoint_every_steps': 1})
  with pytest.raises(NonFiniteLossError, match=r'at step \d+') as info:
    train_and_evaluate(config, str(tmp_path))
  assert 'skip_nonfinite' in str(info.value)
  bad_step = int(str(info.value).split('at step ')[1].split(';')[0])
  saved = sorted(int(n) for n in os.listdir(tmp_path / 'checkpoints'))
  assert saved and max(saved) < bad_step
  assert all(np.isfinite(v).all() for v in helpers.final_params(str(tmp_path)).values())


def test_nan_loss_skipped_when_configured(tmp_path):
  config = helpers.tiny_config(**{'optimizer.name': 'sgd', 'optimizer.learning_rate': 1e30,
                                  'optimizer.skip_nonfinite': True})
  result = train_and_evaluate(config, str(tmp_path))
  assert result['step'] == 20 and result['nonfinite_steps'] > 0


def test_corrupted_latest_checkpoint_falls_back_to_the_previous(tiny_run_copy, capsys):
  workdir, _ = tiny_run_copy
  files = [f for f in glob.glob(os.path.join(workdir, 'checkpoints', '20', 'state', '**', '*'),
                                recursive=True) if os.path.isfile(f) and '/d/' in f]
  assert files
  for f in files:
    with open(f, 'wb') as handle:
      handle.write(b'not a checkpoint')
  result = train_and_evaluate(helpers.tiny_config(num_train_steps=30), workdir)
  out = capsys.readouterr().out
  assert 'checkpoint at step 20 is unreadable' in out and 'resumed from' in out
  assert out.index('unreadable') < out.index('resumed from')
  assert f'{workdir}/checkpoints/10' in out
  assert os.path.isdir(os.path.join(workdir, 'checkpoints_corrupt', '20'))
  assert result['step'] == 30


def test_partial_checkpoint_left_by_a_killed_save_is_ignored(tiny_run_copy):
  workdir, result = tiny_run_copy
  partial = os.path.join(workdir, 'checkpoints', '30.orbax-checkpoint-tmp', 'state')
  os.makedirs(partial)
  with open(os.path.join(partial, 'manifest.ocdbt'), 'wb') as f:
    f.write(b'half written')
  again = train_and_evaluate(helpers.tiny_config(), workdir)
  assert again['step'] == 20 and again['params_sha256'] == result['params_sha256']
  assert not os.path.exists(os.path.dirname(partial))
