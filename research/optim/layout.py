"""Running a rule on a few flat buffers instead of many leaves: `pack_small_leaves` (the small
leaves only, what the training loop uses) and `flatten_leaves` (all leaves, multi-tensor style).

A rule acting entry by entry, or over all entries (global-norm clipping), gives the same updates
on the concatenation of the leaves as on the leaves themselves; only the state's layout changes.
One buffer per dtype (leaves are never cast), so the arithmetic is the per-leaf arithmetic.
Leaves that are not floating or complex, and leaves sharded across devices (concatenating them
would gather them), stay leaves of their own.

Both wrappers change the state's layout: `optax.tree.map_params` and the other tools that find
parameter-shaped trees in a state do not apply to the wrapped state, and a checkpoint of it
restores only into the same wrapper. The aliases of `research.optim` are therefore unwrapped;
`research.train.build_optimizer` wraps its chain in `pack_small_leaves` for the training loop.
"""

import jax
import jax.numpy as jnp
import optax

# Leaves with at most this many entries are packed by `pack_small_leaves`. For such a leaf a
# loop of its own costs more than its copy into the vector. The value is not tuned: it packs
# ResNet-50's BatchNorm vectors and its 1x1 convolutions up to 64x256, and leaves its larger
# kernels as they are.
PACK_MAX_LEAF_SIZE = 16384


def _is_sharded(x) -> bool:
  """Whether `x` is split across devices (explicit axes in its type, or a concrete sharding)."""
  spec = getattr(getattr(jax.typeof(x), "sharding", None), "spec", None)
  if spec is not None and any(axis is not None for axis in spec):
    return True
  if isinstance(x, jax.Array):
    try:
      return not x.sharding.is_fully_replicated
    except AttributeError:  # a tracer: only its type (checked above) knows its sharding
      return False
  return False


def _buffer_name(leaf, max_leaf_size: int | None) -> str | None:
  """The buffer `leaf` goes into (its dtype's name), or None when it stays a leaf of its own."""
  dtype = jnp.result_type(leaf)
  if not jnp.issubdtype(dtype, jnp.inexact) or _is_sharded(leaf):
    return None
  if max_leaf_size is not None and int(jnp.size(leaf)) > max_leaf_size:
    return None
  return jnp.dtype(dtype).name


def pack_tree(tree, max_leaf_size: int | None = PACK_MAX_LEAF_SIZE, *, grouping=None) -> dict:
  """`{"flat": {dtype name: vector}, "other": [leaves]}`: the inexact leaves of `tree` with at
  most `max_leaf_size` entries (all of them for None) raveled and concatenated in tree order,
  one vector per dtype; the other leaves as they are, in tree order.

  Args:
    tree: the tree to pack.
    max_leaf_size: the largest leaf that is packed; None packs all (unsharded, inexact) leaves.
    grouping: a tree of the same structure whose leaves decide which buffer each leaf goes
      into (default: `tree` itself).
  """
  leaves = jax.tree.leaves(tree)
  names = [_buffer_name(x, max_leaf_size)
           for x in jax.tree.leaves(tree if grouping is None else grouping)]
  flat = {}
  for name in dict.fromkeys(n for n in names if n is not None):
    flat[name] = jnp.concatenate(
        [jnp.ravel(x) for x, n in zip(leaves, names, strict=True) if n == name])
  return {"flat": flat,
          "other": [x for x, n in zip(leaves, names, strict=True) if n is None]}


def unpack_tree(packed: dict, like, max_leaf_size: int | None = PACK_MAX_LEAF_SIZE, *,
                grouping=None):
  """The inverse of `pack_tree`: a tree shaped and typed like `like` (`grouping` as there)."""
  leaves, treedef = jax.tree.flatten(like)
  groups = leaves if grouping is None else jax.tree.leaves(grouping)
  offsets = dict.fromkeys(packed["flat"], 0)
  out, other = [], iter(packed["other"])
  for x, g in zip(leaves, groups, strict=True):
    name = _buffer_name(g, max_leaf_size)
    if name is None:
      out.append(next(other))
      continue
    size = int(jnp.size(x))
    piece = jax.lax.slice_in_dim(packed["flat"][name], offsets[name], offsets[name] + size)
    out.append(piece.reshape(jnp.shape(x)).astype(jnp.result_type(x)))
    offsets[name] += size
  return treedef.unflatten(out)


def is_packed(tree) -> bool:
  """Whether `tree` has the layout `pack_tree` returns."""
  return isinstance(tree, dict) and set(tree) == {"flat", "other"}


def _regroup(inner: optax.GradientTransformation, max_leaf_size: int | None
             ) -> optax.GradientTransformationExtraArgs:
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    return inner.init(pack_tree(params, max_leaf_size))

  def update_fn(updates, state, params=None, **extra_args):
    # The parameters decide the grouping, so that it is the one `init` saw.
    grouping = updates if params is None else params
    packed_params = None if params is None else pack_tree(params, max_leaf_size)
    new_updates, state = inner.update(pack_tree(updates, max_leaf_size, grouping=grouping),
                                      state, packed_params, **extra_args)
    return unpack_tree(new_updates, updates, max_leaf_size, grouping=grouping), state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def pack_small_leaves(inner: optax.GradientTransformation,
                      max_leaf_size: int = PACK_MAX_LEAF_SIZE
                      ) -> optax.GradientTransformationExtraArgs:
  """Runs `inner` on one vector per dtype holding all small leaves (and on the large leaves as
  they are), so that a tree of thousands of small arrays costs a few fused loops per step
  instead of a few per leaf.

  `inner` sees `pack_tree(tree)` = `{"flat": {dtype: vector}, "other": [large leaves]}` and its
  state keeps that layout. Same updates as `inner` alone (tested); see the module docstring for
  what the changed layout means for optax's state tools and checkpoints.

  Args:
    inner: the transformation to run (any rule of this package or of optax, or a chain).
    max_leaf_size: floating and complex leaves with at most this many entries are packed.

  Returns:
    An `optax.GradientTransformationExtraArgs`; extra arguments are passed on to `inner`.
  """
  return _regroup(inner, max_leaf_size)


def flatten_leaves(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
  """Runs `inner` on all leaves flattened into one buffer per dtype (multi-tensor style).

  An update is then a handful of loops over a few long buffers instead of several per leaf
  (on an accelerator, a few kernels instead of a few per leaf; a step on many leaves is bound
  by kernel launches there). The gradients (and the parameters, when `inner` uses them) are
  concatenated and the updates split each step; XLA fuses those copies into the rule's loops
  where it can. The state holds one buffer per dtype and accumulator. Sharded and integer
  leaves stay leaves of their own. Same updates as `inner` alone (tested).

  Args:
    inner: the transformation to run.

  Returns:
    An `optax.GradientTransformationExtraArgs`; extra arguments are passed on to `inner`.
  """
  return _regroup(inner, None)
