"""Stored TFDS records -> ``{'image': uint8 (H, W, C), 'label': int32}`` (PIL for resizing).

A :class:`research.data.sources.TfdsSource` maps its records through one of these. PIL is
imported only when an image is resized (ImageNet, pet).
"""

from typing import Any

import numpy as np

IMAGENET_RESIZE = 256  # AlexNet: shorter side to 256, central 256 x 256 patch
IMAGENET_CROP = 224
PET_SIZE = 128  # oxford_iiit_pet images and masks are resized to PET_SIZE x PET_SIZE


def classification_record(record: dict[str, Any]) -> dict[str, np.ndarray]:
  """A TFDS classification record {'image', 'label', ...} -> {'image': uint8, 'label': int32}."""
  return {"image": np.asarray(record["image"], np.uint8), "label": np.int32(record["label"])}


def resize(image: np.ndarray, height: int, width: int, nearest: bool = False) -> np.ndarray:
  """Resizes a uint8 (H, W, C) image to (height, width, C) with PIL (bilinear, or nearest for
  masks)."""
  from PIL import Image

  channels = image.shape[-1]
  pil = Image.fromarray(image[..., 0] if channels == 1 else image)
  method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
  out = np.asarray(pil.resize((width, height), method))
  return out.reshape(height, width, channels)


def imagenet_record(record: dict[str, Any]) -> dict[str, np.ndarray]:
  """AlexNet's preprocessing: shorter side to 256, then the central 256 x 256 patch.

  Returns {'image': uint8 (256, 256, 3), 'label': int32 ()}.
  """
  image = np.asarray(record["image"])
  h, w = image.shape[:2]
  scale = IMAGENET_RESIZE / min(h, w)
  nh, nw = max(IMAGENET_RESIZE, round(h * scale)), max(IMAGENET_RESIZE, round(w * scale))
  image = resize(image, nh, nw)
  top, left = (nh - IMAGENET_RESIZE) // 2, (nw - IMAGENET_RESIZE) // 2
  image = image[top : top + IMAGENET_RESIZE, left : left + IMAGENET_RESIZE]
  return {"image": image, "label": np.int32(record["label"])}


def pet_record(record: dict[str, Any]) -> dict[str, np.ndarray]:
  """Image and trimap resized to PET_SIZE; trimap 1 (pet), 2 (background), 3 (border) -> 0, 1, 2.

  Returns {'image': uint8 (PET_SIZE, PET_SIZE, 3), 'label': int32 (PET_SIZE, PET_SIZE)}. Values
  outside {1, 2, 3} (absent from the real data) count as border (2).
  """
  image = resize(np.asarray(record["image"]), PET_SIZE, PET_SIZE)
  mask = resize(np.asarray(record["segmentation_mask"]), PET_SIZE, PET_SIZE, nearest=True)
  mask = mask[..., 0].astype(np.int32)
  label = np.where((mask >= 1) & (mask <= 3), mask - 1, 2).astype(np.int32)
  return {"image": image, "label": label}
