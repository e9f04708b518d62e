"""ResNet-20 training step: our JAX step against the same network in PyTorch, on one device.

    python -m experiments.benchmarks.train_step [--batch-size=128] [--rounds=7] [--steps=3]
        [--jax-step=train|minimal] [--donate] [--torch-channels-last] [--json=PATH]
        [--torch-device=auto|cpu|cuda]

The workload is He et al.'s CIFAR ResNet-20 (option-A shortcuts, 0.27M parameters) on CIFAR
shapes (N, 32, 32, 3), BatchNorm in training mode, softmax cross-entropy, SGD with heavy-ball
momentum 0.9 and an L2 term 1e-4 * w added to the gradient (PyTorch's `weight_decay`), learning
rate 0.1. One step = forward, backward, optimizer update.

- JAX: `research.models.create('resnet20', num_classes=10)` and the training code's own step
  (`research.train.steps.make_train_step` under `research.train.parallel.data_parallel_train_step`
  on a one-device mesh, optimizer from `research.train.build_optimizer`: `research.optim`'s
  heavy_ball and add_l2_penalty); with `--donate` (the state's buffers donated to the step) it is
  exactly what `python -m research.main` runs per step. `--jax-step=minimal` times a bare
  `jit(value_and_grad)` + optax update of the same model and optimizer instead (no shard_map, no
  metrics).
- PyTorch: the same architecture written with `torch.nn` (NCHW), loaded with the JAX
  initialization; before timing, the two forward passes (training-mode BatchNorm) are compared on
  one batch, so "the same network" is checked, not assumed. `torch.optim.SGD(lr=0.1,
  momentum=0.9, weight_decay=1e-4)` is the same update rule. `--torch-channels-last` runs PyTorch
  with NHWC memory layout (its faster CPU convolution path) instead of its default NCHW.

Timing: after warm-up (compilation), `--rounds` rounds each time `--steps` JAX steps, then
`--steps` PyTorch steps, back to back in this one process, so both see the same machine load; the
report gives medians over rounds (images/s) and the median of the per-round ratios, and the
images per CPU-second of the process (busy threads, including spinning ones), which a shared
machine disturbs less than wall time. Both use the
CPUs of this process's affinity mask: PyTorch's intra-op threads are set to that count, and XLA's
CPU thread pool is sized from it (so `taskset -c 0 python -m ...` compares both on one core).
XLA flags (XLA_FLAGS) are printed with the results.

On a GPU (JAX's default backend 'gpu' and `torch.cuda.is_available()`; `--torch-device=auto`)
both run there: PyTorch's model and batch move to CUDA, each timed block ends with
`torch.cuda.synchronize()` (JAX's with `block_until_ready`), and the images per CPU-second
are then only the host's cost of launching the work. Use more `--steps` per round there
(a step takes milliseconds). Both frameworks are left at their default float32 settings
(on Ampere and later both let cuDNN use TF32 for convolutions).
"""

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime

import jax
import numpy as np
import optax

from research import models
from research.train import build_optimizer, parallel, state, steps

try:
  import torch
  import torch.nn.functional as F
except ImportError:
  torch = None

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
OPTIMIZER = {
  "name": "heavy_ball",
  "learning_rate": 0.1,
  "beta": 0.9,
  "weight_decay": 1e-4,
  "weight_decay_mode": "l2",
}


def require_torch():
  if torch is None:
    raise SystemExit(
      "experiments.benchmarks.train_step needs PyTorch for the reference timing, and it is not "
      "installed; install the benchmark extra: pip install -e '.[bench]'"
    )


# ------------------------------------------------------------------------------------- JAX side


def make_batch(batch_size: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  return {
    "image": rng.random((batch_size, *IMAGE_SHAPE), dtype=np.float32),
    "label": rng.integers(0, NUM_CLASSES, batch_size).astype(np.int32),
  }


def jax_setup(batch: dict, *, step_kind: str = "train", donate: bool = False):
  """Returns (step, state, device batch, variables): step(state, batch) -> (state, metrics)."""
  model = models.create("resnet20", num_classes=NUM_CLASSES)
  tx = build_optimizer(OPTIMIZER)
  rng = jax.random.key(0)
  variables = state.init_variables(model, rng, IMAGE_SHAPE)
  train_state = state.create_train_state(variables, tx, None, jax.random.key_data(rng))
  mesh = parallel.create_mesh(1)
  if step_kind == "train":
    train_step = steps.make_train_step(model, tx, axis_name=parallel.AXIS)
    step = parallel.data_parallel_train_step(train_step, mesh, donate=donate)
  elif step_kind == "minimal":
    step = jax.jit(minimal_step(model, tx), donate_argnums=(0,) if donate else ())
  else:
    raise ValueError(f"--jax-step={step_kind!r} is unknown; use 'train' or 'minimal'")
  train_state = parallel.replicate(train_state, mesh)
  device_batch = parallel.put_batch(batch, mesh)
  return step, train_state, device_batch, variables


def minimal_step(model, tx):
  """The bare step: value_and_grad of the mean cross-entropy, then the optax update."""

  def step(train_state, batch):
    def objective(params):
      logits, new_vars = model.apply(
        {"params": params, "batch_stats": train_state.batch_stats},
        batch["image"],
        train=True,
        mutable=["batch_stats"],
      )
      return models.softmax_cross_entropy(logits, batch["label"]), new_vars["batch_stats"]

    (loss, batch_stats), grads = jax.value_and_grad(objective, has_aux=True)(train_state.params)
    updates, opt_state = tx.update(grads, train_state.opt_state, train_state.params)
    new_state = train_state.replace(
      step=train_state.step + 1,
      params=optax.apply_updates(train_state.params, updates),
      batch_stats=batch_stats,
      opt_state=opt_state,
    )
    return new_state, {"loss": loss}

  return step


# --------------------------------------------------------------------------------- PyTorch side


def torch_resnet20(variables: dict):
  """He et al.'s CIFAR ResNet-20 in torch.nn, with the weights of the Flax `variables`.

  Same layers as `research.models.resnet.CifarResNet(depth=20)`: 3x3 convs without bias, each
  followed by BatchNorm (momentum 0.1 in PyTorch's convention = 0.9 in Flax's, eps 1e-5);
  option-A shortcuts (subsample by 2, zero-pad the channels); global average pooling; a dense
  head. Stride-2 convs pad (0, 1) like XLA's SAME padding on even sizes, so the outputs match.
  """
  require_torch()
  nn = torch.nn

  def conv_bn(name: str, cin: int, cout: int, stride: int):
    conv = nn.Conv2d(cin, cout, 3, stride, padding=1 if stride == 1 else 0, bias=False)
    bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
    params = _get(variables["params"], name)
    with torch.no_grad():
      kernel = np.asarray(params["conv"]["kernel"])  # (3, 3, in, out) -> (out, in, 3, 3)
      conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
      bn.weight.copy_(torch.from_numpy(np.array(params["norm"]["scale"])))
      bn.bias.copy_(torch.from_numpy(np.array(params["norm"]["bias"])))
    return conv, bn

  class Block(nn.Module):
    def __init__(self, name: str, cin: int, cout: int, stride: int):
      super().__init__()
      self.conv1, self.bn1 = conv_bn(f"{name}/conv_norm1", cin, cout, stride)
      self.conv2, self.bn2 = conv_bn(f"{name}/conv_norm2", cout, cout, 1)
      self.stride, self.extra = stride, cout - cin

    def forward(self, x):
      y = self.conv1(F.pad(x, (0, 1, 0, 1)) if self.stride > 1 else x)
      y = self.bn2(self.conv2(F.relu(self.bn1(y))))
      if self.stride > 1:
        x = x[:, :, :: self.stride, :: self.stride]
      if self.extra:
        x = F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
      return F.relu(y + x)

  class ResNet20(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv, self.bn = conv_bn("stem", 3, 16, 1)
      blocks, cin = [], 16
      for s, cout in enumerate((16, 32, 64)):
        for b in range(3):
          stride = 2 if (s > 0 and b == 0) else 1
          blocks.append(Block(f"stage{s + 1}_block{b + 1}", cin, cout, stride))
          cin = cout
      self.blocks = nn.Sequential(*blocks)
      self.head = nn.Linear(64, NUM_CLASSES)
      head = variables["params"]["head"]
      with torch.no_grad():
        self.head.weight.copy_(torch.from_numpy(np.asarray(head["kernel"]).T.copy()))
        self.head.bias.copy_(torch.from_numpy(np.array(head["bias"])))

    def forward(self, x):
      x = self.blocks(F.relu(self.bn(self.conv(x))))
      return self.head(x.mean(dim=(2, 3)))

  return ResNet20()


def _get(tree: dict, path: str):
  for key in path.split("/"):
    tree = tree[key]
  return tree


def torch_setup(variables: dict, batch: dict, *, channels_last: bool = False, device: str = "cpu"):
  """Returns (step, model, images NCHW, labels); step() runs one SGD step and returns the loss.

  `channels_last` stores activations and weights as NHWC in memory (PyTorch's recommended
  layout for convolutions); the default is PyTorch's default contiguous NCHW. `device` is a
  torch device string ('cpu', 'cuda').
  """
  model = torch_resnet20(variables).train().to(device)
  images = torch.from_numpy(batch["image"].transpose(0, 3, 1, 2).copy()).to(device)
  if channels_last:
    model = model.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
  labels = torch.from_numpy(batch["label"].astype(np.int64)).to(device)
  opt = torch.optim.SGD(
    model.parameters(),
    lr=OPTIMIZER["learning_rate"],
    momentum=OPTIMIZER["beta"],
    weight_decay=OPTIMIZER["weight_decay"],
  )

  def step():
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    opt.step()
    return loss

  return step, model, images, labels


def forward_difference(variables: dict, batch: dict, model, device: str = "cpu") -> float:
  """max |logits_jax - logits_torch| / max |logits_jax| on one batch, BatchNorm in training mode."""
  flax_model = models.create("resnet20", num_classes=NUM_CLASSES)
  logits, _ = flax_model.apply(variables, batch["image"], train=True, mutable=["batch_stats"])
  images = torch.from_numpy(batch["image"].transpose(0, 3, 1, 2).copy()).to(device)
  with torch.no_grad():
    reference = model(images).cpu().numpy()
  logits = np.asarray(logits)
  return float(np.abs(logits - reference).max() / np.abs(logits).max())


# ---------------------------------------------------------------------------------------- timing


def resolve_torch_device(requested: str) -> str:
  """'auto' -> 'cuda' when JAX runs on a GPU and PyTorch sees CUDA, else 'cpu'."""
  if requested == "auto":
    on_gpu = jax.default_backend() == "gpu" and torch.cuda.is_available()
    return "cuda" if on_gpu else "cpu"
  if requested == "cuda" and not torch.cuda.is_available():
    raise SystemExit(
      "--torch-device=cuda, but this PyTorch sees no CUDA device; use "
      "--torch-device=cpu or install a CUDA build of PyTorch"
    )
  if requested not in ("cpu", "cuda"):
    raise SystemExit(f"--torch-device={requested!r} is unknown; use auto, cpu or cuda")
  return requested


def machine_description(torch_device: str) -> str:
  cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
  if torch_device == "cuda":
    return f"{torch.cuda.get_device_name()} (JAX: {jax.devices()[0].device_kind}), {cpu}"
  return cpu


def benchmark(
  batch_size: int = 128,
  rounds: int = 7,
  steps_per_round: int = 3,
  warmup: int = 2,
  step_kind: str = "train",
  donate: bool = False,
  channels_last: bool = False,
  torch_device: str = "auto",
) -> dict:
  """Times both steps in alternating rounds; returns the per-round and median throughputs."""
  require_torch()
  device = resolve_torch_device(torch_device)
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
  for name, value in (("batch_size", batch_size), ("rounds", rounds), ("steps", steps_per_round)):
    if value < 1:
      raise ValueError(f"{name}={value} must be at least 1")
  threads = len(os.sched_getaffinity(0))
  torch.set_num_threads(threads)
  batch = make_batch(batch_size)

  jax_step, jax_state, device_batch, variables = jax_setup(
    batch, step_kind=step_kind, donate=donate
  )
  torch_step, torch_model, _, _ = torch_setup(
    variables, batch, channels_last=channels_last, device=device
  )
  difference = forward_difference(variables, batch, torch_model, device)

  start = time.perf_counter()
  jax_state, metrics = jax_step(jax_state, device_batch)
  jax.block_until_ready(metrics)
  compile_s = time.perf_counter() - start
  for _ in range(warmup):
    jax_state, metrics = jax_step(jax_state, device_batch)
    torch_step()
  jax.block_until_ready(metrics)
  sync()

  images = batch_size * steps_per_round
  jax_rates, torch_rates, jax_cpu_rates, torch_cpu_rates = [], [], [], []
  for _ in range(rounds):
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps_per_round):
      jax_state, metrics = jax_step(jax_state, device_batch)
    jax.block_until_ready((jax_state, metrics))
    jax_rates.append(images / (time.perf_counter() - start))
    jax_cpu_rates.append(images / (time.process_time() - cpu_start))
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps_per_round):
      torch_step()
    sync()
    torch_rates.append(images / (time.perf_counter() - start))
    torch_cpu_rates.append(images / (time.process_time() - cpu_start))
  jax_loss = float(metrics["loss"])
  torch_loss = torch_step().item()

  ratios = np.array(jax_rates) / np.array(torch_rates)
  return {
    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    "machine": machine_description(device),
    "torch_device": device,
    "load_average_1min": os.getloadavg()[0],
    "batch_size": batch_size,
    "rounds": rounds,
    "steps_per_round": steps_per_round,
    "jax_step": step_kind,
    "donate": donate,
    "torch_channels_last": channels_last,
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
    "jax_version": jax.__version__,
    "torch_version": torch.__version__,
    "threads": threads,
    "torch_num_threads": torch.get_num_threads(),
    "jax_params": models.count_params(variables["params"]),
    "torch_params": sum(p.numel() for p in torch_model.parameters()),
    "forward_relative_difference": difference,
    "jax_compile_s": compile_s,
    "jax_images_per_s": jax_rates,
    "torch_images_per_s": torch_rates,
    "jax_median": float(np.median(jax_rates)),
    "torch_median": float(np.median(torch_rates)),
    "ratio_median": float(np.median(ratios)),
    "jax_images_per_cpu_s": float(np.median(jax_cpu_rates)),
    "torch_images_per_cpu_s": float(np.median(torch_cpu_rates)),
    "final_loss": {"jax": jax_loss, "torch": torch_loss},
  }


def report(result: dict) -> str:
  r = result
  lines = [
    f"ResNet-20 train step, batch {r['batch_size']} x 32x32x3, {r['date']}, {r['machine']}, "
    f"load average {r['load_average_1min']:.1f}",
    f"parameters: JAX {r['jax_params']:,}  PyTorch {r['torch_params']:,}; forward relative "
    f"difference {r['forward_relative_difference']:.1e}",
    f"threads: {r['threads']} (torch.get_num_threads() = {r['torch_num_threads']}); "
    f"jax {r['jax_version']} step={r['jax_step']} donate={r['donate']} "
    f"XLA_FLAGS={r['xla_flags']!r}; torch {r['torch_version']} "
    f"{'channels_last' if r['torch_channels_last'] else 'NCHW'} on {r['torch_device']}",
    f"JAX compile + first step: {r['jax_compile_s']:.1f} s",
    f"{r['rounds']} alternating rounds of {r['steps_per_round']} steps (images/s per round):",
    "  JAX     " + " ".join(f"{x:7.1f}" for x in r["jax_images_per_s"]),
    "  PyTorch " + " ".join(f"{x:7.1f}" for x in r["torch_images_per_s"]),
    f"median images/s: JAX {r['jax_median']:.1f}, PyTorch {r['torch_median']:.1f}; "
    f"JAX / PyTorch = {r['ratio_median']:.2f} (median of per-round ratios)",
    f"median images per CPU-second (all threads, less sensitive to other load): "
    f"JAX {r['jax_images_per_cpu_s']:.1f}, PyTorch {r['torch_images_per_cpu_s']:.1f}",
  ]
  return "\n".join(lines)


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch-size", type=int, default=128)
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--steps", type=int, default=3, help="steps per framework per round")
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--jax-step", choices=("train", "minimal"), default="train")
  parser.add_argument("--donate", action="store_true", help="donate the JAX state's buffers")
  parser.add_argument(
    "--torch-channels-last", action="store_true", help="PyTorch in channels_last (NHWC) memory"
  )
  parser.add_argument(
    "--torch-device",
    default="auto",
    choices=("auto", "cpu", "cuda"),
    help="where PyTorch runs (auto: CUDA when JAX runs on a GPU)",
  )
  parser.add_argument("--json", default=None, help="also write the result as JSON here")
  args = parser.parse_args(argv)
  require_torch()
  result = benchmark(
    batch_size=args.batch_size,
    rounds=args.rounds,
    steps_per_round=args.steps,
    warmup=args.warmup,
    step_kind=args.jax_step,
    donate=args.donate,
    channels_last=args.torch_channels_last,
    torch_device=args.torch_device,
  )
  print(report(result))
  if args.json:
    with open(args.json, "w") as f:
      json.dump(result, f, indent=2)
  return result


if __name__ == "__main__":
  main(sys.argv[1:])
