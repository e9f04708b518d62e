"""Every model: registry errors, parameter counts against the papers, shapes, one training step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from research import models
from research.models import __main__ as table_module


def _abstract_init(model, shape):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


def _abstract_params(name, shape, num_classes, **kwargs):
  model = models.create(name, num_classes=num_classes, **kwargs)
  return models.count_params(_abstract_init(model, shape)["params"])


# ----------------------------------------------------------------------------- registry


def test_unknown_model_lists_known_names():
  with pytest.raises(ValueError, match="resnet20.*fcn8s"):
    models.create("resnet21", num_classes=10)


@pytest.mark.parametrize(
  "kwargs,match",
  [
    ({"activation": "swish"}, "choose one of"),
    ({"norm": "batchnorm"}, "choose one of"),
    ({"kernel_init": "glorot"}, "xavier_uniform"),
    ({"depht": 3}, "depth"),
    ({"activation": "maxout"}, "only in 'mlp'"),
  ],
)
def test_bad_options_are_explained(kwargs, match):
  with pytest.raises(ValueError, match=match):
    models.create("resnet20", num_classes=10, **kwargs)


def test_every_model_has_a_table_row():
  assert set(table_module.TABLE) == set(models.MODELS)


# ----------------------------------------------------------------------------- parameter counts


def test_alexnet_parameter_count_is_the_papers_split_network():
  # Counted by hand from the paper's layer shapes (weights + biases).
  conv1 = 96 * 11 * 11 * 3 + 96
  conv2 = 256 * 5 * 5 * 48 + 256  # 2 groups: each filter sees 48 of the 96 channels
  conv3 = 384 * 3 * 3 * 256 + 384  # conv3 sees both halves
  conv4 = 384 * 3 * 3 * 192 + 384  # 2 groups
  conv5 = 256 * 3 * 3 * 192 + 256  # 2 groups
  fc6 = 6 * 6 * 256 * 4096 + 4096
  fc7 = 4096 * 4096 + 4096
  fc8 = 4096 * 1000 + 1000
  total = conv1 + conv2 + conv3 + conv4 + conv5 + fc6 + fc7 + fc8
  assert total == 60_965_224
  variables = _abstract_init(models.create("alexnet", num_classes=1000), (1, 224, 224, 3))
  assert models.count_params(variables["params"]) == total
  # 224x224 with conv1 padding 2 gives 55 -> 27 -> 13 -> 6: a 6x6x256 map enters fc6.
  assert variables["params"]["fc6"]["kernel"].shape == (6 * 6 * 256, 4096)
  assert variables["params"]["conv2"]["kernel"].shape == (5, 5, 48, 256)


@pytest.mark.parametrize(
  "name,paper",
  [
    ("resnet20", 0.27e6),
    ("resnet32", 0.46e6),
    ("resnet44", 0.66e6),
    ("resnet56", 0.85e6),
    ("resnet110", 1.7e6),
    ("plain56", 0.85e6),
  ],
)
def test_cifar_resnet_counts_within_3_percent(name, paper):
  n = _abstract_params(name, (1, 32, 32, 3), 10)
  assert abs(n - paper) / paper < 0.03, n


@pytest.mark.parametrize(
  "name,paper,shape,classes,tol",
  [
    ("densenet_bc_100", 0.8e6, (1, 32, 32, 3), 10, 0.06),
    ("resnet18", 11.7e6, (1, 224, 224, 3), 1000, 0.01),
    ("resnet50", 25.6e6, (1, 224, 224, 3), 1000, 0.01),
    ("densenet121", 8.0e6, (1, 224, 224, 3), 1000, 0.01),
    ("vgg16", 138e6, (1, 224, 224, 3), 1000, 0.01),
    ("fcn8s", 134e6, (1, 224, 224, 3), 21, 0.01),
  ],
)
def test_counts_near_published(name, paper, shape, classes, tol):
  n = _abstract_params(name, shape, classes)
  assert abs(n - paper) / paper < tol, n


def test_plain_and_residual_have_the_same_parameters():
  # Option-A shortcuts are parameter-free.
  assert _abstract_params("plain20", (1, 32, 32, 3), 10) == _abstract_params(
    "resnet20", (1, 32, 32, 3), 10
  )


# ----------------------------------------------------------------------------- shapes, steps

# Tiny versions of every model (name, input shape, options) so one jitted step stays cheap.
TINY = {
  "linear": ((4, 8, 8, 1), {}),
  "mlp": ((4, 8, 8, 1), {"depth": 2, "width": 16, "norm": "batch", "dropout_rate": 0.5}),
  "alexnet": ((2, 64, 64, 3), {"width": 1 / 16}),
  "alexnet_cifar": ((2, 32, 32, 3), {"width": 1 / 16}),
  "resnet20": ((2, 16, 16, 3), {"widths": (4, 8, 16)}),
  "resnet32": ((2, 16, 16, 3), {"widths": (2, 4, 8)}),
  "resnet44": ((2, 16, 16, 3), {"widths": (2, 4, 8)}),
  "resnet56": ((2, 16, 16, 3), {"widths": (2, 4, 8)}),
  "resnet110": ((2, 16, 16, 3), {"widths": (2, 4, 8)}),
  "plain20": ((2, 16, 16, 3), {"widths": (4, 8, 16)}),
  "plain32": ((2, 16, 16, 3), {"widths": (2, 4, 8)}),
  "plain44": ((2, 16, 16, 3), {"widths": (2, 4, 8)}),
  "plain56": ((2, 16, 16, 3), {"widths": (2, 4, 8)}),
  "plain110": ((2, 16, 16, 3), {"widths": (2, 4, 8)}),
  "resnet18": ((2, 32, 32, 3), {"width": 4}),
  "resnet34": ((2, 32, 32, 3), {"width": 4}),
  "resnet50": ((2, 32, 32, 3), {"width": 4}),
  # DenseNets with fewer layers per block (tracing 100 concatenating layers takes ~10 s; the
  # full depths are traced in test_full_size_shapes_abstractly and run with -m slow).
  "densenet_bc_100": ((2, 16, 16, 3), {"growth_rate": 2, "block_sizes": (3, 3, 3)}),
  "densenet121": (
    (2, 32, 32, 3),
    {"growth_rate": 2, "stem_features": 4, "block_sizes": (2, 2, 2, 2)},
  ),
  "vgg16": ((2, 32, 32, 3), {"width": 1 / 32}),
  "fcn32s": ((2, 32, 64, 3), {"width": 1 / 32}),
  "fcn16s": ((2, 32, 64, 3), {"width": 1 / 32}),
  "fcn8s": ((2, 32, 64, 3), {"width": 1 / 32}),
}
# Each model's training step is traced and lowered (jit without the XLA compile) in the default
# run; these compile and run it for real by default, the rest with -m slow (compiling deep stacks
# such as DenseNet's 48 concatenating layers takes minutes on 2 cores).
RUN_BY_DEFAULT = ("linear", "mlp", "resnet20", "fcn8s")
NUM_CLASSES = 5


def _setup(name, shape, kwargs, num_classes=NUM_CLASSES):
  """The model, a batch, labels, and a jit-able SGD training step for it."""
  model = models.create(name, num_classes=num_classes, **kwargs)
  x = jax.random.normal(jax.random.key(1), shape)
  segment = name.startswith("fcn")
  labels = jax.random.randint(
    jax.random.key(2), shape[:3] if segment else shape[:1], 0, num_classes
  )
  tx = optax.sgd(0.01)

  def step(variables, opt_state, x, labels):
    others = {k: v for k, v in variables.items() if k != "params"}

    def loss_fn(params):
      logits, updates = model.apply(
        {"params": params, **others},
        x,
        train=True,
        rngs={"dropout": jax.random.key(3)},
        mutable=["batch_stats"],
      )
      return models.softmax_cross_entropy(logits, labels), (updates, logits)

    (loss, (updates, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      variables["params"]
    )
    new_updates, opt_state = tx.update(grads, opt_state, variables["params"])
    params = optax.apply_updates(variables["params"], new_updates)
    return {**variables, **updates, "params": params}, opt_state, loss, logits

  expected = (*shape[:3], num_classes) if segment else (shape[0], num_classes)
  return model, x, labels, tx, step, expected


def _run_step(name, shape, kwargs, num_classes=NUM_CLASSES):
  """Runs one jitted SGD step; returns (initial variables, new variables)."""
  model, x, labels, tx, step, expected = _setup(name, shape, kwargs, num_classes)
  variables = model.init(jax.random.key(0), x, train=False)
  new_variables, _, loss, logits = jax.jit(step)(variables, tx.init(variables["params"]), x, labels)
  assert logits.shape == expected
  assert np.isfinite(float(loss)) and bool(jnp.isfinite(logits).all())
  return variables, new_variables


@pytest.mark.parametrize("name", list(TINY))
def test_every_training_step_lowers(name):
  shape, kwargs = TINY[name]
  model, x, labels, tx, step, expected = _setup(name, shape, kwargs)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  opt_state = jax.eval_shape(tx.init, variables["params"])
  lowered = jax.jit(step).lower(variables, opt_state, x, labels)
  new_variables, _, loss, logits = lowered.out_info
  assert logits.shape == expected and loss.shape == ()
  assert jax.tree.structure(new_variables) == jax.tree.structure(variables)
  eval_out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
  assert eval_out.shape == expected


def _check_step(name):
  shape, kwargs = TINY[name]
  variables, new_variables = _run_step(name, shape, kwargs)
  changed = jax.tree.map(
    lambda a, b: bool(jnp.any(a != b)), variables["params"], new_variables["params"]
  )
  assert any(jax.tree.leaves(changed)), f"{name}: no parameter moved"
  if "batch_stats" in variables:
    moved = jax.tree.map(
      lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"], new_variables["batch_stats"]
    )
    assert all(jax.tree.leaves(moved)), f"{name}: some running statistics did not update"


@pytest.mark.parametrize("name", RUN_BY_DEFAULT)
def test_tiny_model_trains_one_step(name):
  _check_step(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in TINY if n not in RUN_BY_DEFAULT])
def test_tiny_model_trains_one_step_slow(name):
  _check_step(name)


@pytest.mark.parametrize(
  "name,shape,classes",
  [
    ("alexnet", (2, 224, 224, 3), 1000),
    ("resnet50", (2, 224, 224, 3), 1000),
    ("densenet121", (2, 224, 224, 3), 1000),
    ("fcn8s", (1, 256, 320, 3), 21),
    ("resnet110", (2, 32, 32, 3), 10),
    ("densenet_bc_100", (2, 32, 32, 3), 10),
  ],
)
def test_full_size_shapes_abstractly(name, shape, classes):
  model = models.create(name, num_classes=classes)
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = _abstract_init(model, shape)
  out = jax.eval_shape(
    lambda v, x: model.apply(
      v, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)}
    )[0],
    variables,
    x,
  )
  expected = (*shape[:3], classes) if name.startswith("fcn") else (shape[0], classes)
  assert out.shape == expected


@pytest.mark.slow
@pytest.mark.parametrize(
  "name,shape,classes",
  [
    ("alexnet", (2, 224, 224, 3), 1000),
    ("resnet18", (2, 224, 224, 3), 1000),
    ("resnet50", (2, 224, 224, 3), 1000),
    ("densenet121", (2, 224, 224, 3), 1000),
    ("resnet110", (8, 32, 32, 3), 10),
    ("densenet_bc_100", (8, 32, 32, 3), 10),
    ("vgg16", (2, 224, 224, 3), 1000),
    ("fcn8s", (1, 224, 224, 3), 21),
  ],
)
def test_full_size_model_trains_one_step(name, shape, classes):
  _run_step(name, shape, {}, classes)


@pytest.mark.parametrize(
  "options",
  [
    {"activation": "maxout", "num_pieces": 3},
    {"activation": "tanh", "norm": "layer"},
    {"activation": "prelu", "norm": "weight", "kernel_init": "xavier_normal"},
    {"dropout_rate": 0.5, "dropout_mode": "test_time_scaling"},
  ],
)
def test_mlp_options(options):
  _run_step("mlp", (4, 8, 8, 1), {"depth": 2, "width": 12, **options})


@pytest.mark.parametrize("norm", ["group", "layer", "instance", "none", "weight"])
def test_norm_choices_lower(norm):
  for name in ("resnet20", "vgg16"):
    model, x, labels, tx, step, expected = _setup(
      name, (2, 32, 32, 3), {"norm": norm, "activation": "leaky_relu"}
    )
    variables = jax.eval_shape(lambda x, m=model: m.init(jax.random.key(0), x), x)
    lowered = jax.jit(step).lower(
      variables, jax.eval_shape(tx.init, variables["params"]), x, labels
    )
    assert lowered.out_info[3].shape == expected


def test_linear_templates_have_the_image_shape():
  model = models.create("linear", num_classes=3)
  v = model.init(jax.random.key(0), jnp.zeros((1, 4, 5, 2)))
  x = jax.random.normal(jax.random.key(1), (1, 4, 5, 2))
  v = jax.tree.map(lambda a: a + 0.1 * jnp.ones_like(a), v)
  templates = v["params"]["linear"]["kernel"].T.reshape(3, 4, 5, 2)
  scores = model.apply(v, x)
  np.testing.assert_allclose(scores[0], (templates * x).sum((1, 2, 3)) + 0.1, rtol=1e-5)


@pytest.mark.parametrize(
  "name, head",
  [
    ("linear", "linear"),
    ("mlp", "head"),
    ("alexnet", "fc8"),
    ("resnet20", "head"),
    ("resnet18", "head"),
    ("densenet_bc_100", "head"),
    ("vgg16", "fc8"),
    ("fcn8s", "score_fr"),
  ],
)
def test_head_pattern_matches_the_output_layer_only(name, head):
  """The head regex matches exactly the parameters whose shapes follow num_classes."""
  import re

  from flax import traverse_util

  shape = (1, 224, 224, 3) if name in ("alexnet", "vgg16") else (1, 32, 32, 3)
  shapes = {}
  for num_classes in (3, 5):
    model = models.create(name, num_classes=num_classes)
    variables = jax.eval_shape(
      lambda m=model: m.init(
        {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(0)},
        jnp.zeros(shape),
        train=False,
      )
    )
    flat = traverse_util.flatten_dict(variables["params"], sep="/")
    shapes[num_classes] = {p: v.shape for p, v in flat.items()}
  pattern = re.compile(models.head_pattern(model))
  changed = {p for p in shapes[3] if shapes[3][p] != shapes[5][p]}
  matched = {p for p in shapes[3] if pattern.search(p)}
  assert changed == matched, (changed, matched)
  assert any(p.split("/")[0] == head for p in matched)


def test_with_batch_axis_sets_the_axis_only_where_there_is_one():
  assert models.with_batch_axis(models.create("resnet20", num_classes=10), "b").axis_name == "b"
  kept = models.create("resnet20", num_classes=10, axis_name="x")
  assert models.with_batch_axis(kept, "b").axis_name == "x"
  linear = models.create("linear", num_classes=10)
  assert models.with_batch_axis(linear, "b") is linear


def test_eval_metrics_follow_task_and_classes():
  assert models.eval_metrics("classification", 10) == ("accuracy", "loss")
  assert "top5_accuracy" in models.eval_metrics("classification", 100)
  assert "mean_iou" in models.eval_metrics("segmentation", 3)
  with pytest.raises(ValueError, match="unknown task"):
    models.eval_metrics("regression", 1)
