"""JAX augmentations (filled in next)."""
