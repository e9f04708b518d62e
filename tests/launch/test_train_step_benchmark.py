"""The training-step benchmark: the PyTorch reference is the same network, and it fails clearly
without PyTorch. (Timings are printed by the benchmark, never asserted.)"""

import json

import numpy as np
import pytest

from experiments.benchmarks import train_step


def test_missing_torch_names_the_install_command(monkeypatch):
  monkeypatch.setattr(train_step, "torch", None)
  with pytest.raises(SystemExit, match=r"pip install -e '\.\[bench\]'"):
    train_step.main(["--rounds=1"])


@pytest.mark.slow  # compiles ResNet-20 (about 20 s on 2 busy cores)
def test_torch_reference_is_the_same_network():
  pytest.importorskip("torch")
  batch = train_step.make_batch(4)
  _, _, _, variables = train_step.jax_setup(batch, step_kind="minimal")
  _, model, _, _ = train_step.torch_setup(variables, batch)
  torch_params = sum(p.numel() for p in model.parameters())
  assert torch_params == train_step.models.count_params(variables["params"]) == 269_722
  assert train_step.forward_difference(variables, batch, model) < 1e-4


@pytest.mark.slow
def test_same_update_rule_one_step():
  """After one step from the same weights on the same batch, both frameworks hold the same head."""
  torch = pytest.importorskip("torch")
  batch = train_step.make_batch(8)
  step, state, device_batch, variables = train_step.jax_setup(batch, step_kind="minimal")
  torch_step, model, _, _ = train_step.torch_setup(variables, batch)
  state, _ = step(state, device_batch)
  torch_step()
  jax_head = np.asarray(state.params["head"]["kernel"]).T
  with torch.no_grad():
    np.testing.assert_allclose(model.head.weight.numpy(), jax_head, rtol=1e-3, atol=1e-5)


@pytest.mark.slow
def test_benchmark_runs_end_to_end(tmp_path, capsys):
  pytest.importorskip("torch")
  path = tmp_path / "result.json"
  train_step.main(["--batch-size=8", "--rounds=2", "--steps=1", "--warmup=0", f"--json={path}"])
  result = json.loads(path.read_text())
  assert result["jax_params"] == result["torch_params"]
  assert len(result["jax_images_per_s"]) == len(result["torch_images_per_s"]) == 2
  assert result["threads"] == result["torch_num_threads"]
  assert "JAX / PyTorch" in capsys.readouterr().out


def test_torch_device_follows_jax_and_refuses_missing_cuda():
  torch = pytest.importorskip("torch")
  if train_step.jax.default_backend() != "cpu" or torch.cuda.is_available():
    pytest.skip("needs a machine without a GPU")
  assert train_step.resolve_torch_device("auto") == "cpu"
  assert train_step.resolve_torch_device("cpu") == "cpu"
  with pytest.raises(SystemExit, match="sees no CUDA device"):
    train_step.resolve_torch_device("cuda")
