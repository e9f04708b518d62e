"""MNIST-format IDX files (plain or gzip) as arrays (``research.data.datasets`` serves them).

IDX layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type byte (0x08 uint8,
0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), a byte with the number of
dimensions d, then d big-endian uint32 sizes, then the data in big-endian C order.

A directory holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (``.gz`` optional; a ``.`` instead of
the last ``-``, as some mirrors name them, is accepted). No checksums are checked: Debian's
``dataset-fashion-mnist`` recompresses the ``.gz`` files, so only the decoded arrays match the
published ones.
"""

import functools
import gzip
import os
import zlib
from typing import NamedTuple

import numpy as np

from research.errors import ConfigError, MalformedDatasetError

SPLITS = ("train", "test")
_PREFIX = {"train": "train", "test": "t10k"}
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxArrays(NamedTuple):
  images: np.ndarray  # uint8 (N, H, W, C): C = 1 for (N, H, W) files, else their last axis
  labels: np.ndarray  # int32 (N,)


def parse_idx(data: bytes) -> np.ndarray:
  """Decodes the bytes of one IDX file into an array of its stored shape (native byte order)."""
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
    raise MalformedDatasetError(
      f"Not an IDX file: header bytes {data[:4]!r}; expected 00 00 <type> <ndim>."
    )
  ndim = data[3]
  if len(data) < 4 + 4 * ndim:
    raise MalformedDatasetError(
      f"IDX file has {len(data)} bytes, fewer than its header of {4 + 4 * ndim} bytes."
    )
  shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
  dtype = np.dtype(_DTYPES[data[2]])
  offset = 4 + 4 * ndim
  expected = offset + int(np.prod(shape)) * dtype.itemsize
  if len(data) != expected:
    raise MalformedDatasetError(
      f"IDX file has {len(data)} bytes; its header {shape} implies {expected}."
    )
  array = np.frombuffer(data, dtype, offset=offset).reshape(shape)
  return array.astype(dtype.newbyteorder("="))


def idx_bytes(array: np.ndarray) -> bytes:
  """The IDX encoding of a uint8, int8, int16, int32, float32 or float64 array."""
  codes = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}
  code = codes.get(array.dtype.newbyteorder("="))
  if code is None:
    raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of {sorted(map(str, codes))}")
  header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
  return header + np.ascontiguousarray(array, array.dtype.newbyteorder(">")).tobytes()


def write_split_dir(directory: str, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
  """Writes {'train': (images, labels), 'test': ...} as an IDX directory; returns 'idx:<dir>'.

  Images are uint8 (N, H, W) or (N, H, W, C) (named idx3 / idx4), labels (N,) integers (stored
  as uint8 when they fit, else int32). The files are written under temporary names and renamed.
  """
  os.makedirs(directory, exist_ok=True)
  for split, (images, labels) in splits.items():
    labels = np.asarray(labels)
    fits = labels.min() >= 0 and labels.max() < 256
    labels = labels.astype(np.uint8 if fits else np.int32)
    images = np.asarray(images, np.uint8)
    for kind, array in (("images", images), ("labels", labels)):
      name = f"{_PREFIX[split]}-{kind}-idx{array.ndim}-ubyte"
      tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
      with open(tmp, "wb") as f:
        f.write(idx_bytes(array))
      os.replace(tmp, os.path.join(directory, name))
  return f"idx:{directory}"


def read_idx(path: str) -> np.ndarray:
  """Reads one IDX file, gzip-compressed if it ends in ``.gz``.

  Raises:
    MalformedDatasetError: naming the file, if it is truncated or damaged (a short or corrupt
      gzip stream, a header that does not match the size).
  """
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      return parse_idx(f.read())
  except (EOFError, gzip.BadGzipFile, zlib.error, MalformedDatasetError) as e:
    detail = str(e) or type(e).__name__
    raise MalformedDatasetError(
      f"IDX file {path!r} is truncated or damaged ({detail}); re-extract it, or reinstall the "
      "package that provides it"
    ) from e


def _find(directory: str, split: str, kind: str) -> str:
  stem = f"{_PREFIX[split]}-{kind}"
  dims = ("idx3", "idx4") if kind == "images" else ("idx1",)
  candidates = [
    f"{stem}{sep}{d}-ubyte{gz}" for gz in ("", ".gz") for d in dims for sep in ("-", ".")
  ]
  for candidate in candidates:
    path = os.path.join(directory, candidate)
    if os.path.exists(path):
      return path
  raise FileNotFoundError(f"no {candidates[0]}[.gz] for split {split!r}")


@functools.lru_cache(maxsize=8)
def read_split(directory: str, split: str) -> IdxArrays:
  """Images uint8 (N, H, W, C) and labels int32 (N,) of one split (cached per process).

  Image files hold (N, H, W) (MNIST, one channel) or (N, H, W, C) arrays (e.g. CIFAR as IDX).
  """
  if split not in SPLITS:
    raise ConfigError(f"IDX datasets have splits {list(SPLITS)}, not {split!r}.")
  images = read_idx(_find(directory, split, "images"))
  labels = read_idx(_find(directory, split, "labels"))
  if images.ndim not in (3, 4) or labels.ndim != 1 or len(images) != len(labels):
    raise MalformedDatasetError(
      f"IDX split {split!r} in {directory!r}: images {images.shape} and labels {labels.shape} "
      "should be (N, H, W) or (N, H, W, C), and (N,)."
    )
  images = images[..., None] if images.ndim == 3 else images
  arrays = IdxArrays(images.astype(np.uint8), labels.astype(np.int32))
  for array in arrays:  # shared through the cache: nobody may modify them
    array.setflags(write=False)
  return arrays
