"""The optimizer benchmark runs end to end on tiny trees and prints its table."""

import numpy as np

from experiments.benchmarks import optim_update


def test_resnet50_shapes_have_the_size_of_resnet50():
  shapes = optim_update.resnet50_shapes()
  assert len(shapes) == 161
  assert sum(int(np.prod(s)) for s in shapes) == 25_557_032


def test_benchmark_prints_a_row_per_rule_and_layout(capsys):
  optim_update.main(
    [
      "--trees=small",
      "--small_leaves=6",
      "--repeats=1",
      "--iters=1",
      "--rules=adam,heavy_ball",
      "--variants=per-leaf,packed,flattened",
    ]
  )
  out = capsys.readouterr().out
  rows = [line for line in out.splitlines() if line.startswith("| (b)")]
  assert [(row.split("|")[2].strip(), row.split("|")[3].strip()) for row in rows] == [
    (rule, variant)
    for rule in ("adam", "heavy_ball")
    for variant in ("per-leaf", "packed", "flattened")
  ]
  assert "ours / optax" in out
