"""Is the input pipeline ever the bottleneck? Pipeline images/s vs a resnet20 step's images/s.

    python -m experiments.benchmarks.input_pipeline            # defaults: batch 128
    python -m experiments.benchmarks.input_pipeline --pipeline_batches=60 --steps=4

One run measures, on this machine:

1. the pipeline: CIFAR-shaped records (32 x 32 x 3 uint8, random pixels, 10 classes) stored as
   a real TFDS ``array_record`` dataset (built once into a temporary folder, PNG-encoded like
   TFDS's cifar10) and read through the same code as ``create_iterator('cifar10', ...,
   train=True, standardize=True)``: ``tfds`` data source -> grain shuffle / repeat ->
   pad-4-and-crop + flip -> batch -> per-channel standardization; images/s over
   ``--pipeline_batches`` batches after a warm-up;
2. the consumer: a jitted resnet20 training step (softmax cross-entropy, SGD with momentum 0.9,
   batch statistics updated) on a fixed on-device batch, images/s over ``--steps`` steps after
   compilation;
3. the two together: the same step fed by the pipeline (``jax.device_put`` of each batch).

Target: pipeline rate >= 2 x the step's rate. Both run on the same CPU cores, so a busy machine
lowers both numbers; the ratio is the figure of merit.
"""

import argparse
import datetime
import os
import platform
import tempfile
import time

import numpy as np

NUM_RECORDS = 10_000


def build_synthetic_cifar(data_dir: str):
  """A TFDS array_record dataset of NUM_RECORDS random CIFAR-shaped images; returns builder."""
  import tensorflow_datasets as tfds

  class SyntheticCifar(tfds.core.GeneratorBasedBuilder):
    """Random 32 x 32 x 3 images with cifar10's features (benchmark only)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict(
          {
            "image": tfds.features.Image(shape=(32, 32, 3)),
            "label": tfds.features.ClassLabel(num_classes=10),
          }
        ),
      )

    def _split_generators(self, dl_manager):
      del dl_manager
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      rng = np.random.default_rng(0)
      for i in range(NUM_RECORDS):
        image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        yield i, {"image": image, "label": int(rng.integers(10))}

  builder = SyntheticCifar(data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare()
  return builder


def pipeline_rate(builder, batch_size: int, num_batches: int, warmup: int = 5):
  """Images/s of the CIFAR training pipeline over ``num_batches`` batches."""
  import grain

  from research.data import datasets, pipeline

  source = grain.MapDataset.source(builder.as_data_source(split="train"))
  source = source.map(datasets.classification_record)
  stats = datasets.stats_of_images(datasets.sample_images(source))
  iterator = pipeline.make_iterator(
    source,
    global_batch_size=batch_size,
    seed=0,
    train=True,
    augment=pipeline.host_augmentation("crop_flip"),
    stats=stats,
  )
  for _ in range(warmup):
    next(iterator)
  start = time.perf_counter()
  for _ in range(num_batches):
    batch = next(iterator)
  elapsed = time.perf_counter() - start
  assert batch["image"].shape == (batch_size, 32, 32, 3)
  return batch_size * num_batches / elapsed, iterator


def make_train_step():
  import jax
  import optax

  from research import models

  model = models.create("resnet20", num_classes=10)
  tx = optax.sgd(0.1, momentum=0.9)

  def init(key, image):
    variables = model.init(key, image, train=False)
    return variables["params"], variables["batch_stats"], tx.init(variables["params"])

  @jax.jit
  def step(params, batch_stats, opt_state, image, label):
    def loss_fn(p):
      logits, updates = model.apply(
        {"params": p, "batch_stats": batch_stats}, image, train=True, mutable=["batch_stats"]
      )
      return models.softmax_cross_entropy(logits, label), updates["batch_stats"]

    (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_stats, opt_state, loss

  return init, step


def step_rate(batch_size: int, steps: int):
  """Images/s of the jitted resnet20 step on a fixed batch (after compilation)."""
  import jax

  init, step = make_train_step()
  rng = np.random.default_rng(0)
  image = jax.device_put(rng.normal(size=(batch_size, 32, 32, 3)).astype(np.float32))
  label = jax.device_put(rng.integers(0, 10, batch_size).astype(np.int32))
  state = init(jax.random.key(0), image)
  state = step(*state, image, label)[:3]  # compile
  jax.block_until_ready(state)
  start = time.perf_counter()
  for _ in range(steps):
    *state, loss = step(*state, image, label)
  jax.block_until_ready(loss)
  return batch_size * steps / (time.perf_counter() - start), (init, step, state)


def fed_step_rate(iterator, batch_size: int, steps: int, compiled):
  """Images/s of the same step fed by the pipeline, each batch copied to the device."""
  import jax

  _, step, state = compiled
  next(iterator)
  start = time.perf_counter()
  for _ in range(steps):
    batch = jax.device_put(next(iterator))
    *state, loss = step(*state, batch["image"], batch["label"])
  jax.block_until_ready(loss)
  return batch_size * steps / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch_size", type=int, default=128)
  parser.add_argument("--pipeline_batches", type=int, default=100)
  parser.add_argument("--steps", type=int, default=8)
  args = parser.parse_args()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  with tempfile.TemporaryDirectory() as data_dir:
    start = time.perf_counter()
    builder = build_synthetic_cifar(data_dir)
    build_seconds = time.perf_counter() - start
    produce, iterator = pipeline_rate(builder, args.batch_size, args.pipeline_batches)
    consume, compiled = step_rate(args.batch_size, args.steps)
    fed = fed_step_rate(iterator, args.batch_size, args.steps, compiled)
  load = os.getloadavg()
  print(f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
  print(f"machine: {platform.node()}, {os.cpu_count()} CPU cores, {platform.processor() or 'cpu'}")
  print(f"load average (1, 5, 15 min) at the end: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}")
  print(
    f"synthetic CIFAR-shaped TFDS dataset: {NUM_RECORDS} records, built in {build_seconds:.0f} s"
  )
  print()
  print("| what | images/s |")
  print("|---|---|")
  print(
    f"| pipeline (tfds array_record -> grain, pad-crop + flip + standardize), batch "
    f"{args.batch_size} | {produce:,.0f} |"
  )
  print(f"| resnet20 train step (jit, SGD momentum), batch {args.batch_size} | {consume:,.1f} |")
  print(f"| resnet20 step fed by the pipeline (device_put per batch) | {fed:,.1f} |")
  print()
  ratio = produce / consume
  verdict = "meets" if ratio >= 2 else "MISSES"
  print(f"ratio pipeline / step: {ratio:,.1f}x ({verdict} the >= 2x target)")


if __name__ == "__main__":
  main()
