"""Per-channel statistics of training images, and their JSON cache (AlexNet's mean subtraction).

Each source (:mod:`research.data.sources`) picks how its images reach :func:`stats_of_images`
(arrays in chunks, or records sampled with :func:`sample_images`) and whether the result is
cached with :func:`cached`.
"""

import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import grain
import numpy as np

STATS_MAX_EXAMPLES = 60_000  # channel statistics use at most this many training images
CHUNK = 1024  # images per chunk when the statistics are summed over in-memory arrays


class ChannelStats(NamedTuple):
  """Per-channel statistics of the training images in [0, 1] (AlexNet's mean subtraction).

  ``eigenvalues`` / ``eigenvectors`` (columns) are those of the C x C pixel covariance, used by
  the PCA colour augmentation.
  """

  mean: np.ndarray  # (C,) float32
  std: np.ndarray  # (C,) float32
  eigenvalues: np.ndarray  # (C,) float32, ascending
  eigenvectors: np.ndarray  # (C, C) float32, column i belongs to eigenvalue i


def sample_images(
  source: grain.MapDataset, view=None, limit: int = STATS_MAX_EXAMPLES
) -> Iterator[np.ndarray]:
  """Yields every image (H, W, C) of ``source`` up to ``limit``, else ``limit`` evenly spaced
  ones, each through ``view`` (default: as stored)."""
  n = len(source)
  view = view or (lambda image: image)
  for i in np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int)):
    yield view(source[int(i)]["image"])


def stats_of_images(images: Iterable[np.ndarray]) -> ChannelStats:
  """Channel statistics of uint8 images, in the [0, 1] scale of the pipeline.

  ``images`` yields arrays (..., C) (single images or chunks); the sums are accumulated in
  float64, so the images never need to fit in memory together:
  mean = sum x / n, covariance = (sum x x^T - n mean mean^T) / (n - 1), std = sqrt(diag).
  """
  count, total, outer = 0, 0.0, 0.0
  for image in images:
    flat = image.reshape(-1, image.shape[-1]).astype(np.float64) / 255.0  # (pixels, C)
    count += flat.shape[0]
    total = total + flat.sum(axis=0)
    outer = outer + flat.T @ flat
  mean = total / count
  covariance = (outer - count * np.outer(mean, mean)) / (count - 1)
  eigenvalues, eigenvectors = np.linalg.eigh(covariance)
  return ChannelStats(
    mean=mean.astype(np.float32),
    std=np.sqrt(np.diag(covariance)).astype(np.float32),
    eigenvalues=np.maximum(eigenvalues, 0.0).astype(np.float32),
    eigenvectors=eigenvectors.astype(np.float32),
  )


def stats_of_arrays(images: np.ndarray) -> ChannelStats:
  """Channel statistics of every uint8 image of (N, H, W, C), summed in chunks of CHUNK."""
  return stats_of_images(images[i : i + CHUNK] for i in range(0, len(images), CHUNK))


def cached(path: str, compute: Callable[[], ChannelStats]) -> ChannelStats:
  """The statistics stored as JSON at ``path``, else ``compute()`` written there atomically."""
  if os.path.exists(path):
    with open(path) as f:
      stored = json.load(f)
    return ChannelStats(**{k: np.asarray(v, np.float32) for k, v in stored.items()})
  stats = compute()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "w") as f:
    json.dump({k: np.asarray(v).tolist() for k, v in stats._asdict().items()}, f)
  os.replace(tmp, path)
  return stats
