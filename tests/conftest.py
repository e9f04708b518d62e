"""Test-wide setup: 8 simulated CPU devices, so every data-parallel path runs here; the
XLA:CPU flags and the persistent compilation cache of `research.runtime`, as users get them."""

import os

# Must happen before JAX initializes its backends.
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from research import runtime  # noqa: E402  (after XLA_FLAGS is set)

runtime.configure()
