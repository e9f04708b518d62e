"""A tiny run shared by several tests (copied before a test changes it)."""

import shutil

import pytest

from research.train import train_and_evaluate
from tests.train import helpers


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
  """mlp_digits:test trained for 20 steps (checkpoints at 10 and 20) on 8 devices."""
  workdir = str(tmp_path_factory.mktemp("tiny_run"))
  result = train_and_evaluate(helpers.tiny_config(tensorboard=True), workdir)
  return workdir, result


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path):
  workdir, result = tiny_run
  copy = str(tmp_path / "run")
  shutil.copytree(workdir, copy)
  return copy, result
