"""FCN pieces: bilinear transposed convolutions, skip fusion shapes, backbone transfer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import models
from research.models import fcn


@pytest.mark.parametrize("factor", [2, 3, 8, 32])
@pytest.mark.parametrize("per_class", [True, False])
def test_bilinear_transposed_conv_is_bilinear_upsampling_inside(factor, per_class):
  x = jax.random.normal(jax.random.key(0), (1, 5, 4, 2))
  layer = fcn.BilinearUpsample(factor, per_class=per_class)
  y = layer.apply(layer.init(jax.random.key(1), x), x)
  assert y.shape == (1, 5 * factor, 4 * factor, 2)
  ref = jax.image.resize(x, y.shape, "bilinear")
  # Away from the borders (where resize clamps and the convolution sees zero padding).
  m = factor
  np.testing.assert_allclose(y[:, m:-m, m:-m], ref[:, m:-m, m:-m], rtol=1e-5, atol=1e-5)
  assert not np.allclose(y[:, :1], ref[:, :1], atol=1e-3)  # the border does differ


def _dilated_correlation(x, kernel, factor, padding, depthwise):
  """The definition: correlate the input dilated by `factor` (zeros between pixels)."""
  return jax.lax.conv_general_dilated(
    x,
    kernel,
    (1, 1),
    (padding, padding),
    lhs_dilation=(factor, factor),
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    feature_group_count=x.shape[-1] if depthwise else 1,
  )


@pytest.mark.parametrize("factor", [1, 2, 3, 5, 8, 32])
@pytest.mark.parametrize("depthwise", [True, False])
def test_transposed_conv_matches_dilated_correlation_and_its_gradients(factor, depthwise):
  k = 2 * factor - factor % 2
  p = (k - factor) // 2
  padding = (k - 1 - p, factor - 1 + p)
  rng = np.random.default_rng(factor)
  x = jnp.asarray(rng.standard_normal((2, 3, 4, 3)), jnp.float32)
  kernel = jnp.asarray(
    rng.standard_normal((k, k, 1 if depthwise else 3, 3 if depthwise else 5)), jnp.float32
  )
  ours = fcn.transposed_conv(x, kernel, factor, padding, depthwise)
  ref = _dilated_correlation(x, kernel, factor, padding, depthwise)
  assert ours.shape == ref.shape == (2, 3 * factor, 4 * factor, kernel.shape[-1])
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
  cotangent = jnp.asarray(rng.standard_normal(ref.shape), jnp.float32)
  grads = [
    jax.grad(
      lambda k_, x_, f=f: jnp.vdot(f(x_, k_, factor, padding, depthwise), cotangent), argnums=(0, 1)
    )(kernel, x)
    for f in (fcn.transposed_conv, _dilated_correlation)
  ]
  for g_ours, g_ref in zip(*grads, strict=True):
    np.testing.assert_allclose(g_ours, g_ref, rtol=1e-4, atol=1e-4)


def test_transposed_conv_rejects_other_paddings():
  x = jnp.zeros((1, 2, 2, 1))
  with pytest.raises(ValueError, match="does not give an f H x f W output"):
    fcn.transposed_conv(x, jnp.zeros((4, 4, 1, 1)), 2, (0, 0), depthwise=True)


def test_bilinear_kernel_values():
  np.testing.assert_allclose(fcn.bilinear_kernel(2)[0], [0.0625, 0.1875, 0.1875, 0.0625])
  assert fcn.bilinear_kernel(3).shape == (5, 5)
  assert fcn.bilinear_kernel(3)[2, 2] == 1.0


@pytest.mark.parametrize("name", ["fcn32s", "fcn16s", "fcn8s"])
def test_fcn_variants_have_their_skips(name):
  model = models.create(name, num_classes=4, width=1 / 32)
  x = jax.ShapeDtypeStruct((1, 64, 96, 3), jnp.float32)
  v = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  skips = {"fcn32s": set(), "fcn16s": {"score_pool4"}, "fcn8s": {"score_pool4", "score_pool3"}}
  assert {k for k in v["params"] if k.startswith("score_pool")} == skips[name]
  assert jax.eval_shape(lambda v, x: model.apply(v, x), v, x).shape == (1, 64, 96, 4)


def test_fcn_rejects_sizes_not_divisible_by_32():
  model = models.create("fcn8s", num_classes=2, width=1 / 32)
  with pytest.raises(ValueError, match="divisible by 32"):
    model.init(jax.random.key(0), jnp.zeros((1, 48, 64, 3)))


def test_transfer_backbone_from_classifier():
  x = jnp.ones((1, 32, 32, 3))
  clf = models.create("vgg16", num_classes=10, width=1 / 32, norm="batch")
  clf_vars = clf.init(jax.random.key(0), x)
  seg = models.create("fcn8s", num_classes=3, width=1 / 32, norm="batch", fc6_kernel=1)
  seg_vars = seg.init(jax.random.key(1), x)
  out = fcn.transfer_backbone(seg_vars, clf_vars)
  same = jax.tree.map(
    lambda a, b: bool(jnp.all(a == b)), out["params"]["backbone"], clf_vars["params"]["backbone"]
  )
  assert all(jax.tree.leaves(same))
  assert jax.tree.structure(out) == jax.tree.structure(seg_vars)
  np.testing.assert_array_equal(out["params"]["fc6"]["kernel"], clf_vars["params"]["fc6"]["kernel"])
  np.testing.assert_array_equal(
    out["params"]["score_fr"]["kernel"], seg_vars["params"]["score_fr"]["kernel"]
  )

  # On the classifier's input size the FCN's fc6/fc7 compute what the classifier's do.
  def fc7(model, variables):
    _, state = model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])
    return state["intermediates"]["fc7_act"]["__call__"][0]

  np.testing.assert_allclose(fc7(seg, out), fc7(clf, clf_vars), rtol=1e-5, atol=1e-6)


def _abstract(name, x, **kwargs):
  model = models.create(name, width=1 / 32, **kwargs)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)


def test_transfer_backbone_explains_mismatches():
  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  clf_vars = _abstract("vgg16", x, num_classes=10)
  transfer = lambda seg, clf, **kw: jax.eval_shape(
    lambda a, b: fcn.transfer_backbone(a, b, **kw), seg, clf
  )
  wide = jax.eval_shape(
    lambda x: models.create("fcn32s", num_classes=3, width=1 / 16, fc6_kernel=1).init(
      jax.random.key(1), x
    ),
    x,
  )
  with pytest.raises(ValueError, match="same width"):
    transfer(wide, clf_vars)
  seven = _abstract("fcn32s", x, num_classes=3)
  with pytest.raises(ValueError, match="fc6_kernel"):
    transfer(seven, clf_vars)
  only_convs = transfer(seven, clf_vars, include_fc=False)
  assert only_convs["params"]["fc6"]["kernel"].shape[:2] == (7, 7)
  with pytest.raises(ValueError, match="norm"):
    transfer(seven, _abstract("vgg16", x, num_classes=10, norm="batch"), include_fc=False)
