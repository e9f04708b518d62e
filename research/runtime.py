"""Process-wide JAX settings that the entry points apply before JAX starts its backends.

    from research import runtime
    runtime.configure()          # first thing in a program, before any JAX computation

* XLA:CPU flags (`CPU_FLAGS`) that make our training steps faster here without changing their
  numbers. None does at present: `python -m experiments.benchmarks.xla_cpu_flags` (README table)
  found the oneDNN and XNNPACK switches of this jaxlib to compile the same program as the
  default, and --xla_cpu_use_fusion_emitters=false a different one that is no faster (ResNet-20,
  batch 128: 0.99x) and compiles slower. The hook stays, so a flag that measures faster on a
  later jaxlib goes here; CPU flags do not touch GPU or TPU runs. RESEARCH_CPU_FLAGS=0 leaves
  XLA_FLAGS alone.
* The persistent compilation cache (`jax_compilation_cache_dir`): a compiled program is stored
  on disk under a key of its HLO, the backend and the flags, so a resumed run, a second run of
  the same config or a test that repeats another's program skips XLA compilation. Default
  directory: $RESEARCH_COMPILATION_CACHE, else ~/.cache/research/jax; '' turns it off.

`research.main`, `experiments.figures` and the test suite call `configure()`; a library user
who imports `research.train` directly keeps JAX's defaults unless they call it too.
"""

import importlib.util
import os

CPU_FLAGS: tuple[str, ...] = ()
DEFAULT_CACHE = os.path.join("~", ".cache", "research", "jax")
MAX_CACHE_BYTES = 4 << 30


def default_cache_dir() -> str:
  return os.path.expanduser(os.environ.get("RESEARCH_COMPILATION_CACHE", DEFAULT_CACHE))


def cpu_flags_enabled() -> bool:
  return os.environ.get("RESEARCH_CPU_FLAGS", "1") != "0"


def add_cpu_flags() -> None:
  """Appends CPU_FLAGS to XLA_FLAGS (flags the user set already win)."""
  if not cpu_flags_enabled():
    return
  flags = os.environ.get("XLA_FLAGS", "").split()
  names = {f.split("=")[0] for f in flags}
  flags += [f for f in CPU_FLAGS if f.split("=")[0] not in names]
  os.environ["XLA_FLAGS"] = " ".join(flags)


def enable_compilation_cache(directory: str | None = None) -> str | None:
  """Turns on JAX's persistent compilation cache in `directory` (default_cache_dir())."""
  import jax  # noqa: PLC0415  (after add_cpu_flags)

  directory = default_cache_dir() if directory is None else os.path.expanduser(directory)
  if not directory:
    return None
  os.makedirs(directory, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", directory)
  # Cache every program: the small ones (a digits MLP) are what tests and figures repeat.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  if importlib.util.find_spec("filelock") is not None:  # JAX's size bound needs it ('train' extra)
    jax.config.update("jax_compilation_cache_max_size", MAX_CACHE_BYTES)  # least recently used go
  return directory


def configure(compilation_cache: str | None = None) -> None:
  """CPU flags, then the compilation cache (`compilation_cache=''` turns it off)."""
  add_cpu_flags()
  enable_compilation_cache(compilation_cache)
