"""Running a rule on a few flat buffers instead of many leaves: `pack_small_leaves` (the small
leaves only, what the training loop uses) and `flatten_leaves` (all leaves, multi-tensor style).

A rule acting entry by entry, or over all entries (global-norm clipping), gives the same updates
on the concatenation of the leaves as on the leaves themselves; only the state's layout changes.
Buffers hold one dtype each (leaves are never cast), so the arithmetic is the per-leaf one.
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

# The most entries one buffer holds (16 MB of float32). One buffer for a whole large model makes
# each step's temporaries hundreds of MB, which XLA:CPU's host allocator maps afresh on every
# call (measured: packing ResNet-50's 25.6M gradient entries took 45 ms into one buffer, 14 ms
# into buffers of this size). That is still only a handful of buffers per model.
MAX_BUFFER_SIZE = 2**22


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


def _packable(leaf, max_leaf_size: int | None) -> bool:
  if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact) or _is_sharded(leaf):
    return False
  return max_leaf_size is None or int(jnp.size(leaf)) <= max_leaf_size


def _buffer_names(leaves, max_leaf_size: int | None, max_buffer_size: int) -> list:
  """For each leaf, the buffer it goes into, or None when it stays a leaf of its own.

  Buffers hold one dtype; leaves of at most PACK_MAX_LEAF_SIZE entries ('float32') and larger
  ones ('float32.large') go into different buffers (see `_concatenate`), and a new buffer
  ('float32.1', 'float32.large.1', ...) starts whenever one would exceed `max_buffer_size`.
  """
  names, filled, index = [], {}, {}
  for leaf in leaves:
    if not _packable(leaf, max_leaf_size):
      names.append(None)
      continue
    size = int(jnp.size(leaf))
    group = jnp.dtype(jnp.result_type(leaf)).name
    if size > PACK_MAX_LEAF_SIZE:
      group += ".large"
    if group in filled and filled[group] + size > max_buffer_size:
      index[group], filled[group] = index[group] + 1, 0
    filled[group] = filled.get(group, 0) + size
    index.setdefault(group, 0)
    names.append(group if index[group] == 0 else f"{group}.{index[group]}")
  return names


def _concatenate(pieces: list) -> jax.Array:
  """The pieces (1-D, one dtype) end to end. Many small pieces: `jnp.concatenate` (one fused
  loop; fast to compile for thousands of leaves). Large pieces: written one by one into a
  buffer of zeros with `dynamic_update_slice`, because XLA:CPU fuses a concatenate of large
  operands into its consumer as a select over the operands per entry (measured on ResNet-50's
  Adam step: 448 ms with concatenate, 83 ms this way)."""
  if all(int(p.size) <= PACK_MAX_LEAF_SIZE for p in pieces):
    return jnp.concatenate(pieces)
  buffer, offset = jnp.zeros((sum(int(p.size) for p in pieces),), pieces[0].dtype), 0
  for piece in pieces:
    buffer = jax.lax.dynamic_update_slice(buffer, piece, (offset,))
    offset += int(piece.size)
  return buffer


def pack_tree(
  tree,
  max_leaf_size: int | None = PACK_MAX_LEAF_SIZE,
  *,
  grouping=None,
  max_buffer_size: int = MAX_BUFFER_SIZE,
) -> dict:
  """`{"flat": {buffer name: vector}, "other": [leaves]}`: the inexact leaves of `tree` with at
  most `max_leaf_size` entries (all of them for None) raveled and concatenated in tree order,
  in buffers of one dtype, small or large leaves, and at most `max_buffer_size` entries (a
  larger leaf alone); the other leaves as they are, in tree order.

  Args:
    tree: the tree to pack.
    max_leaf_size: the largest leaf that is packed; None packs all (unsharded, inexact) leaves.
    grouping: a tree of the same structure whose leaves decide which buffer each leaf goes
      into (default: `tree` itself).
    max_buffer_size: the most entries a buffer holds (unless one leaf alone is larger).
  """
  leaves = jax.tree.leaves(tree)
  names = _buffer_names(
    jax.tree.leaves(tree if grouping is None else grouping), max_leaf_size, max_buffer_size
  )
  flat = {}
  for name in dict.fromkeys(n for n in names if n is not None):
    flat[name] = _concatenate(
      [jnp.ravel(x) for x, n in zip(leaves, names, strict=True) if n == name]
    )
  return {"flat": flat, "other": [x for x, n in zip(leaves, names, strict=True) if n is None]}


def unpack_tree(
  packed: dict,
  like,
  max_leaf_size: int | None = PACK_MAX_LEAF_SIZE,
  *,
  grouping=None,
  max_buffer_size: int = MAX_BUFFER_SIZE,
):
  """The inverse of `pack_tree`: a tree shaped and typed like `like` (other arguments as
  there)."""
  leaves, treedef = jax.tree.flatten(like)
  names = _buffer_names(
    leaves if grouping is None else jax.tree.leaves(grouping), max_leaf_size, max_buffer_size
  )
  offsets = dict.fromkeys(packed["flat"], 0)
  out, other = [], iter(packed["other"])
  for x, name in zip(leaves, names, strict=True):
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


def _regroup(
  inner: optax.GradientTransformation, max_leaf_size: int | None, max_buffer_size: int
) -> optax.GradientTransformationExtraArgs:
  inner = optax.with_extra_args_support(inner)
  sizes = {"max_buffer_size": max_buffer_size}

  def init_fn(params):
    return inner.init(pack_tree(params, max_leaf_size, **sizes))

  def update_fn(updates, state, params=None, **extra_args):
    # The parameters decide the grouping, so that it is the one `init` saw.
    grouping = updates if params is None else params
    packed_params = None if params is None else pack_tree(params, max_leaf_size, **sizes)
    packed_updates = pack_tree(updates, max_leaf_size, grouping=grouping, **sizes)
    new_updates, state = inner.update(packed_updates, state, packed_params, **extra_args)
    return unpack_tree(new_updates, updates, max_leaf_size, grouping=grouping, **sizes), state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def pack_small_leaves(
  inner: optax.GradientTransformation, max_leaf_size: int = PACK_MAX_LEAF_SIZE
) -> optax.GradientTransformationExtraArgs:
  """Runs `inner` on one vector per dtype (per `MAX_BUFFER_SIZE` entries) holding all small
  leaves, and on the large leaves as they are, so that a tree of thousands of small arrays
  costs a few fused loops per step instead of a few per leaf.

  `inner` sees `pack_tree(tree)` = `{"flat": {dtype: vector}, "other": [large leaves]}` and its
  state keeps that layout. Same updates as `inner` alone (tested); see the module docstring for
  what the changed layout means for optax's state tools and checkpoints.

  Args:
    inner: the transformation to run (any rule of this package or of optax, or a chain).
    max_leaf_size: floating and complex leaves with at most this many entries are packed.

  Returns:
    An `optax.GradientTransformationExtraArgs`; extra arguments are passed on to `inner`.
  """
  return _regroup(inner, max_leaf_size, MAX_BUFFER_SIZE)


def flatten_leaves(
  inner: optax.GradientTransformation, max_buffer_size: int = MAX_BUFFER_SIZE
) -> optax.GradientTransformationExtraArgs:
  """Runs `inner` on all leaves flattened into a few buffers per dtype (multi-tensor style).

  An update is then a handful of loops over a few long buffers instead of several per leaf
  (on an accelerator, a few kernels instead of a few per leaf; a step on many leaves is bound
  by kernel launches there). The price is two copies per step: the gradients (and the
  parameters, when `inner` uses them) are concatenated and the updates split; XLA fuses the
  split into `optax.apply_updates`. On a CPU, where a loop costs no launch, that is slower
  than the per-leaf rule (see experiments/benchmarks/optim_update.py); it is meant for GPUs
  and TPUs. The state holds one buffer per `max_buffer_size` entries, dtype and
  accumulator. Sharded and integer leaves stay leaves of their own. Same updates as `inner`
  alone (tested).

  Args:
    inner: the transformation to run.
    max_buffer_size: the most entries in one buffer (see `MAX_BUFFER_SIZE`).

  Returns:
    An `optax.GradientTransformationExtraArgs`; extra arguments are passed on to `inner`.
  """
  return _regroup(inner, None, max_buffer_size)
