"""A pytest plugin running optax's own tests with research.optim's factories in optax's place.

    python -m pytest -p tests.optim.optax_swap --pyargs optax._src.alias_test [--optax-swap-only]
        [--optax-swap-report=results.json]

Before any test file is imported, every attribute of every `optax` module that holds optax's
factory for a name research.optim also defines (`SWAPPED`: sgd, adam, rmsprop, ...) is replaced
by ours: the names the tests look up (`alias.sgd`, `transform.scale_by_adam`, `optax.adam`, ...)
and the names optax's other code looks up at call time (optax's `adamw` calls
`transform.scale_by_adam`, `lbfgs` calls `transform.scale_by_learning_rate`, ...). The state
types are optax's own objects in research.optim, so nothing needs swapping there. No optax code
is copied: the test files run from the installed package.

One fix to a test file's environment: optax 0.2.8's `sharding_test` compares version strings
(`'0.10.2' < '0.7.2'` is True, so on JAX 0.10 it would skip its sharding tests); it sees a `jax`
whose `__version__` compares as numbers.

`--optax-swap-only` deselects tests about another optimizer (`opt_name='adabelief'`, a `_lion`
suffix, the `LBFGSTest` class, ...), which mostly exercise optax's own code.
`--optax-swap-skip=test_a,test_b` deselects tests by method name (any parameter index).
`--optax-swap-baseline` swaps nothing (optax's own results, for comparison). `--optax-swap-report`
writes, per test, the outcome, whether any swapped factory ran, and the failure's last line.
"""

import functools
import importlib
import json
import pkgutil
import re
import sys
import types

import optax
import pytest

import research.optim as ro

SWAPPED = tuple(
  sorted(
    name
    for name in ro.__all__
    if hasattr(optax, name)
    and callable(getattr(ro, name))
    and not isinstance(getattr(ro, name), type)
    and getattr(optax, name) is not getattr(ro, name)
  )
)

_state = {"current": None, "used": set(), "results": {}}


def _recording(name, ours):
  @functools.wraps(ours)
  def factory(*args, **kwargs):
    _state["used"].add(_state["current"] or "<import>")
    return ours(*args, **kwargs)

  return factory


def swap_factories() -> dict[str, int]:
  """Puts ours in place of optax's everywhere optax binds them; returns counts per name."""
  for info in pkgutil.walk_packages(optax.__path__, "optax."):
    if not info.name.endswith("_test") and ".test_utils" not in info.name:
      try:
        importlib.import_module(info.name)
      except ImportError:  # an optional dependency of an optax module we do not test
        continue
  originals = {name: getattr(optax, name) for name in SWAPPED}
  replacements = {name: _recording(name, getattr(ro, name)) for name in SWAPPED}
  counts = dict.fromkeys(SWAPPED, 0)
  for module_name, module in list(sys.modules.items()):
    if module_name != "optax" and not module_name.startswith("optax."):
      continue
    for name in SWAPPED:
      if getattr(module, name, None) is originals[name]:
        setattr(module, name, replacements[name])
        counts[name] += 1
  return counts


def pytest_addoption(parser):
  group = parser.getgroup("optax_swap")
  group.addoption(
    "--optax-swap-only",
    action="store_true",
    help="deselect parameterized cases about other optimizers",
  )
  group.addoption("--optax-swap-report", default=None, help="write per-test results (JSON)")
  group.addoption(
    "--optax-swap-skip",
    default="",
    help="comma-separated test method names to deselect (parameter index ignored)",
  )
  group.addoption(
    "--optax-swap-baseline",
    action="store_true",
    help="swap nothing: optax's own factories, for comparison",
  )


def pytest_configure(config):
  if config.getoption("--optax-swap-baseline"):
    return
  counts = swap_factories()
  missing = [name for name, n in counts.items() if n == 0]
  if missing:
    raise pytest.UsageError(f"optax_swap found no optax binding for {missing}")


_OPT_NAME = re.compile(r"opt_name'?\s*[:=]\s*'(\w+)'")


def _names_other_optimizer(name: str, namespaces=(optax, optax.contrib)) -> bool:
  """Whether the longest suffix of `name` ('scalers_adamax', 'lbfgs') naming a factory of
  `namespaces` names one we do not swap."""
  parts = name.lower().split("_")
  for i in range(len(parts)):
    suffix = "_".join(parts[i:])
    if any(callable(getattr(namespace, suffix, None)) for namespace in namespaces):
      return suffix not in SWAPPED
  return False


def _other_optimizer(item) -> bool:
  """Whether a test is about an optimizer we do not swap: a parameterized case naming one
  (`opt_name='adabelief'`, a `_lion` suffix), or a test class named after one (`LBFGSTest`)."""
  class_name = getattr(getattr(item, "cls", None), "__name__", "")
  optimizers = (sys.modules["optax._src.alias"], optax.contrib)
  if class_name.endswith("Test") and _names_other_optimizer(class_name[: -len("Test")], optimizers):
    return True
  params = getattr(getattr(item, "obj", None), "__x_params_repr__", "") or ""
  match = _OPT_NAME.search(params)
  if match:
    return match.group(1) not in SWAPPED
  return _names_other_optimizer(item.name.removeprefix("test_"))


class _ComparableVersion(str):
  """A version string that compares as numbers: '0.10.2' > '0.7.2'."""

  def _key(self, other):
    as_tuple = lambda v: tuple(int(p) for p in re.findall(r"\d+", v)[:3])
    return as_tuple(self), as_tuple(str(other))

  def __lt__(self, other):
    a, b = self._key(other)
    return a < b

  def __ge__(self, other):
    return not self < other


class _JaxWithComparableVersion(types.ModuleType):
  """The `jax` module as one optax test file sees it, with a comparable `__version__`."""

  def __init__(self, module):
    super().__init__(module.__name__)
    self._module = module
    self.__version__ = _ComparableVersion(module.__version__)

  def __getattr__(self, name):
    return getattr(self._module, name)


def pytest_collection_modifyitems(config, items):
  # optax 0.2.8's sharding_test skips its sharding-in-types tests when
  # `jax.__version__ < '0.7.2'` as strings, which is True for '0.10.2'; comparing as numbers
  # makes them run on the JAX they were written for.
  for item in items:
    module = getattr(item, "module", None)
    path = getattr(module, "__file__", "") or ""
    if path.replace("\\", "/").endswith("optax/_src/sharding_test.py"):
      if not isinstance(module.jax, _JaxWithComparableVersion):
        module.jax = _JaxWithComparableVersion(module.jax)
  skip = set(filter(None, config.getoption("--optax-swap-skip").split(",")))
  only = config.getoption("--optax-swap-only")

  def deselect(item) -> bool:
    base_name = re.sub(r"\d+$", "", item.name.split("[")[0])
    return base_name in skip or (only and _other_optimizer(item))

  config.hook.pytest_deselected(items=[item for item in items if deselect(item)])
  items[:] = [item for item in items if not deselect(item)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
  _state["current"] = _result_key(item.location[0], item.nodeid)
  try:
    return (yield)
  finally:
    _state["current"] = None


def _result_key(location_path: str, nodeid: str) -> str:
  """'optax._src.alias_test::AliasTest::test_optimization0' for a test of that file."""
  path = location_path.replace("\\", "/")
  module = path[path.rfind("optax/") :].removesuffix(".py").replace("/", ".")
  return f"{module}::" + "::".join(nodeid.split("::")[-2:])


def pytest_runtest_logreport(report):
  key = _result_key(report.location[0], report.nodeid)
  entry = _state["results"].setdefault(key, {"outcome": "passed", "message": ""})
  if report.failed:
    entry["outcome"] = "failed"
    entry["message"] = str(report.longrepr).strip().splitlines()[-1][:300]
  elif report.skipped and entry["outcome"] == "passed" and report.when in ("setup", "call"):
    entry["outcome"] = "skipped"


def pytest_sessionfinish(session):
  path = session.config.getoption("--optax-swap-report")
  if not path:
    return
  for key, entry in _state["results"].items():
    entry["used_ours"] = key in _state["used"]
  report = {
    "swapped": list(SWAPPED),
    "used_at_import": "<import>" in _state["used"],
    "tests": _state["results"],
  }
  with open(path, "w") as f:
    json.dump(report, f, indent=1, sort_keys=True)
