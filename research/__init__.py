"""The lecture "Supervised Learning II" as a JAX library.

Subpackages (import the one you need; none is imported here, so `import research.optim`
pulls in only jax, optax and numpy):

- `research.optim`: the lecture's optimizers, clipping rules, weight decay and schedules as
  Optax `GradientTransformation`s.
- `research.models`: Flax (linen) models, layers, initializers, losses and metrics.
- `research.data`: TFDS / grain input pipelines, augmentations, device batching.
- `research.train`: data-parallel training, evaluation, Orbax checkpoints, fine-tuning.
- `research.errors`: `UserError`, the family of what the user can fix, and the exit codes
  (standard library only).
"""

__version__ = "0.1.0"
