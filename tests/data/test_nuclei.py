"""The nucleus segmentation image: instance ids -> semantic classes, and tiling."""

import numpy as np
import pytest

from research.data import nuclei


def test_nucleus_tiles_and_labels():
  instances = np.zeros((6, 6), np.int32)
  instances[1:5, 1:3] = 1
  instances[1:5, 3:5] = 2  # touching nuclei
  labels = nuclei.semantic_labels(instances)
  # every nucleus pixel next to the background or the other nucleus is boundary
  assert (labels[instances == 0] == 0).all()
  assert (labels[instances > 0] == 2).all()
  instances[0:6, 0:6] = 3
  labels = nuclei.semantic_labels(np.pad(instances, 1))
  assert labels[3, 3] == 1 and labels[1, 1] == 2 and labels[0, 0] == 0
  t = nuclei.tiles(np.arange(16).reshape(4, 4), 2)
  assert t.shape == (4, 2, 2) and t[1].tolist() == [[2, 3], [6, 7]]
  assert nuclei.tiles(np.zeros((4, 4)), 2, stride=1).shape == (9, 2, 2)
  with pytest.raises(ValueError, match="tile size"):
    nuclei.tiles(np.zeros((4, 4)), 8)
