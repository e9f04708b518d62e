"""A small real segmentation set: the nucleus image that ships inside the stardist wheel.

Used by the FCN figure (`experiments/figures/fcn_segmentation.py`).

The stardist package (PyPI) carries one real 512x512 fluorescence image of cell nuclei
(`stardist/data/images/img2d.tif`, uint16) with its hand-drawn instance mask (`mask2d.tif`,
0 = background, 1..183 = one id per nucleus). Installing stardist pulls numba, scikit-image and
csbdeep, far more than two small TIFF files are worth, so we only read the files:

1. from an installed stardist distribution, if there is one (located without importing it);
2. from the cache directory (`$RESEARCH_CACHE_DIR/stardist-<version>`, by default
   `~/.cache/research/stardist-<version>`);
3. otherwise `pip download stardist==<version> --no-deps` (one 3 MB wheel, no install) and the
   two files are extracted from the wheel into the cache. Both are checked against SHA-256 digests.

The instance mask becomes a 3-class semantic map (background, nucleus interior, nucleus boundary),
the classic setup for touching nuclei, where the boundary class is what needs fine resolution.
"""

import hashlib
import importlib.metadata
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile
from typing import NamedTuple

import numpy as np

from research.errors import ConfigError, DatasetNotFoundError, MalformedDatasetError

STARDIST_VERSION = "0.9.2"
FILES = {
  "img2d.tif": "f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750",
  "mask2d.tif": "59ad5e820b7982ca9d13e946fa6e7f64e2714899e00a2ae6c69aa79aad53d46f",
}
_IN_WHEEL = "stardist/data/images/"
CLASS_NAMES = ("background", "nucleus", "boundary")


class NucleusImage(NamedTuple):
  image: np.ndarray  # (512, 512) float32, percentile-normalized to about [0, 1]
  instances: np.ndarray  # (512, 512) int32, 0 = background, k = k-th nucleus
  source: str  # where the files were read from


def cache_dir() -> pathlib.Path:
  root = os.environ.get("RESEARCH_CACHE_DIR", str(pathlib.Path.home() / ".cache" / "research"))
  return pathlib.Path(root) / f"stardist-{STARDIST_VERSION}"


def _sha256(path: pathlib.Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


def _valid(folder: pathlib.Path) -> bool:
  return all((folder / f).is_file() and _sha256(folder / f) == h for f, h in FILES.items())


def _installed_folder() -> pathlib.Path | None:
  """The image folder of an installed stardist distribution, without importing stardist."""
  try:
    dist = importlib.metadata.distribution("stardist")
  except importlib.metadata.PackageNotFoundError:
    return None
  folder = pathlib.Path(dist.locate_file(_IN_WHEEL))
  return folder if _valid(folder) else None


def _download_into(folder: pathlib.Path) -> None:
  """Fetches the stardist wheel (no dependencies, no install) and extracts the two TIFFs.

  The files are platform-independent, so one fixed wheel tag is asked for on every platform.
  """
  with tempfile.TemporaryDirectory() as tmp:
    cmd = [
      sys.executable,
      "-m",
      "pip",
      "download",
      f"stardist=={STARDIST_VERSION}",
      "--no-deps",
      "--only-binary=:all:",
      "--platform",
      "manylinux_2_28_x86_64",
      "--python-version",
      "3.11",
      "--quiet",
      "-d",
      tmp,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = list(pathlib.Path(tmp).glob("stardist-*.whl"))
    if proc.returncode != 0 or not wheels:
      raise DatasetNotFoundError(
        f"the stardist nucleus image is not in {folder} and `{' '.join(cmd[2:])}` failed "
        f"(exit {proc.returncode}: {proc.stderr.strip()[-300:]}). Fix: run that command "
        f"where PyPI is reachable and copy stardist/data/images/img2d.tif and mask2d.tif "
        f"from the wheel (a zip file) into {folder}, or `pip install stardist`."
      )
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as wheel:
      for name in FILES:
        (folder / name).write_bytes(wheel.read(_IN_WHEEL + name))
  if not _valid(folder):
    raise MalformedDatasetError(
      f"the files extracted into {folder} do not match their SHA-256 digests "
      f"{FILES}; delete the folder and run again"
    )


def load_nucleus_image() -> NucleusImage:
  """Reads the image and its instance mask (see the module docstring for where from)."""
  import tifffile  # a declared dependency; imported here to keep module import light

  folder = _installed_folder()
  source = f"installed stardist ({folder})"
  if folder is None:
    folder = cache_dir()
    source = f"stardist {STARDIST_VERSION} wheel, cached in {folder}"
    if not _valid(folder):
      _download_into(folder)
  raw = tifffile.imread(folder / "img2d.tif").astype(np.float32)
  lo, hi = np.percentile(raw, [1.0, 99.8])
  image = np.clip((raw - lo) / (hi - lo), 0.0, 1.2).astype(np.float32)
  instances = tifffile.imread(folder / "mask2d.tif").astype(np.int32)
  return NucleusImage(image, instances, source)


def semantic_labels(instances: np.ndarray, boundary_width: int = 1) -> np.ndarray:
  """Instance ids (H, W) -> classes (H, W) int32: 0 background, 1 nucleus, 2 boundary.

  A nucleus pixel is a boundary pixel when a pixel within `boundary_width` steps along a row or a
  column belongs to another instance or to the background (so touching nuclei stay separated).
  """
  if boundary_width < 1:
    raise ValueError(f"boundary_width={boundary_width} must be >= 1")
  h, w = instances.shape
  padded = np.pad(instances, boundary_width, mode="edge")
  boundary = np.zeros(instances.shape, bool)
  r = boundary_width
  for d in range(1, r + 1):
    for dy, dx in ((-d, 0), (d, 0), (0, -d), (0, d)):
      boundary |= padded[r + dy : r + dy + h, r + dx : r + dx + w] != instances
  labels = (instances > 0).astype(np.int32)
  labels[boundary & (instances > 0)] = 2
  return labels


def tiles(array: np.ndarray, size: int, stride: int | None = None) -> np.ndarray:
  """Cuts (H, W, ...) into (N, size, size, ...) tiles, row by row, `stride` apart (default size)."""
  stride = size if stride is None else stride
  h, w = array.shape[:2]
  if size > min(h, w):
    raise ValueError(f"tile size {size} exceeds the image size {h}x{w}; use a smaller tile")
  return np.stack(
    [
      array[y : y + size, x : x + size]
      for y in range(0, h - size + 1, stride)
      for x in range(0, w - size + 1, stride)
    ]
  )


def train_test_tiles(size: int = 64, train_fraction: float = 0.75, stride: int | None = None):
  """Spatially disjoint tiles: the left `train_fraction` of the columns for training.

  Returns:
    ((train_images (N, s, s, 1), train_labels (N, s, s)), (test_images, test_labels), source).
  """
  data = load_nucleus_image()
  labels = semantic_labels(data.instances)
  cut = int(round(data.image.shape[1] * train_fraction / size)) * size
  if not 0 < cut < data.image.shape[1]:
    raise ConfigError(
      f"train_fraction={train_fraction} with tile size {size} leaves no "
      "training or no test columns; use a fraction nearer 0.5 or smaller tiles"
    )
  parts = []
  for cols, step in ((slice(0, cut), stride), (slice(cut, None), size)):
    image, label = data.image[:, cols], labels[:, cols]
    parts.append((tiles(image, size, step)[..., None], tiles(label, size, step)))
  return parts[0], parts[1], data.source
