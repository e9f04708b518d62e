"""Prints the models table: measured parameter counts next to the papers'.

    python -m research.models

Parameters are counted on `jax.eval_shape(model.init, ...)`, so nothing is allocated.
"""

import argparse

import jax
import jax.numpy as jnp

from research import models

IMAGENET, CIFAR, MNIST = (224, 224, 3), (32, 32, 3), (28, 28, 1)

# name -> (input shape, classes, published count or None, where the count comes from)
TABLE = {
  "linear": (MNIST, 10, None, ""),
  "mlp": (MNIST, 10, None, "2 x 256 hidden"),
  "alexnet": (
    IMAGENET,
    1000,
    60_965_224,
    "Krizhevsky et al. 2012, Fig. 2 layer shapes (text: 60 M)",
  ),
  "alexnet_cifar": (CIFAR, 10, None, "32x32 variant"),
  "resnet20": (CIFAR, 10, 270_000, "He et al. 2016, Table 6: 0.27 M"),
  "resnet32": (CIFAR, 10, 460_000, "Table 6: 0.46 M"),
  "resnet44": (CIFAR, 10, 660_000, "Table 6: 0.66 M"),
  "resnet56": (CIFAR, 10, 850_000, "Table 6: 0.85 M"),
  "resnet110": (CIFAR, 10, 1_700_000, "Table 6: 1.7 M"),
  "plain20": (CIFAR, 10, 270_000, "same layers as resnet20"),
  "plain32": (CIFAR, 10, 460_000, "same layers as resnet32"),
  "plain44": (CIFAR, 10, 660_000, "same layers as resnet44"),
  "plain56": (CIFAR, 10, 850_000, "same layers as resnet56"),
  "plain110": (CIFAR, 10, 1_700_000, "same layers as resnet110"),
  "resnet18": (IMAGENET, 1000, 11_700_000, "11.7 M (torchvision; the paper gives FLOPs)"),
  "resnet34": (IMAGENET, 1000, 21_800_000, "21.8 M (torchvision; the paper gives FLOPs)"),
  "resnet50": (IMAGENET, 1000, 25_600_000, "25.6 M (torchvision; the paper gives FLOPs)"),
  "densenet_bc_100": (CIFAR, 10, 800_000, "Huang et al. 2017, Table 2: 0.8 M"),
  "densenet121": (IMAGENET, 1000, 8_000_000, "8.0 M as commonly cited (torchvision: 7,978,856)"),
  "vgg16": (IMAGENET, 1000, 138_000_000, "Simonyan & Zisserman 2015, Table 2: 138 M"),
  "fcn32s": (IMAGENET, 21, 134_000_000, "Long et al. 2015, Table 1: 134 M"),
  "fcn16s": (IMAGENET, 21, 134_000_000, "Long et al. 2015: 134 M (FCN-VGG16)"),
  "fcn8s": (IMAGENET, 21, 134_000_000, "Long et al. 2015: 134 M (FCN-VGG16)"),
}


def measured_params(name: str, input_shape: tuple[int, ...], num_classes: int) -> int:
  """Parameters of `create(name, num_classes=...)` on one `input_shape` input, via eval_shape."""
  model = models.create(name, num_classes=num_classes)
  x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  return models.count_params(variables["params"])


def table() -> str:
  """The markdown table of every registered model."""
  missing = sorted(set(models.MODELS) - set(TABLE))
  if missing:
    raise ValueError(f"models {missing} have no row in TABLE; add one")
  lines = [
    "| model | input | classes | parameters | published | difference | source |",
    "|---|---|---|---:|---:|---:|---|",
  ]
  for name, (shape, classes, paper, source) in TABLE.items():
    n = measured_params(name, shape, classes)
    ref = f"{paper:,}" if paper else "-"
    diff = f"{100 * (n - paper) / paper:+.2f}%" if paper else "-"
    lines.append(
      f"| {name} | {'x'.join(map(str, shape))} | {classes} | {n:,} | {ref} | {diff} | {source} |"
    )
  return "\n".join(lines)


def main(argv=None) -> None:
  argparse.ArgumentParser(
    prog="python -m research.models",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  ).parse_args(argv)
  print(table())


if __name__ == "__main__":
  main()
