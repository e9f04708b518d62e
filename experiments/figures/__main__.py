"""Builds the lecture's figures and their report.

    python -m experiments.figures --out DIR [--only NAME ...] [--size {test,default,full}]
                                  [--full] [--set KEY=VALUE ...]

writes DIR/NAME.png (and DIR/NAME.gif for animations), DIR/REPORT.md and DIR/report.json.

Exit codes: 0 every selected figure passed its checks; 1 some figure's checks failed (the report
is written all the same), or a bug (Python's traceback); 2 a bad argument or `--set` (one
`error:` line, before any figure runs or anything is written).

`--size` picks each figure's `get_config(size)`: "test" (the reduced runs of tests/figures),
"default" (CPU size, the default) or "full" (paper size, meant for accelerators); `--full` is
`--size full`.

`--set` overrides fields of the selected figures' configs (each figure's `get_config`), e.g.
`--full --only batch_norm --set dataset=idx:/data/mnist steps=20000`. VALUE is read as a
Python literal (`3`, `1e-3`, `None`, `(20, 56)`) and otherwise as a string; every KEY must
exist in every selected figure's config, and all of them are checked before anything runs:
the value must have the field's type (no None or True for a number) and a count must be in range
(`steps`, `batch_size`, `eval_every`, `epochs`, `depth`, `width`, `num_*`, `*_steps`, ... a
positive number; `max_train` / `max_val` / `max_test` positive or None; `seed` an integer >= 0;
`learning_rate` a positive finite number).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import math
import pathlib
import re
import sys
import time

from experiments.figures import FIGURES
from experiments.figures.common import SIZES, FigureResult, check
from research import runtime


def _parse(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    prog="python -m experiments.figures",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--out", required=True, type=pathlib.Path, help="output directory")
  parser.add_argument(
    "--only", nargs="+", metavar="NAME", default=None, help="build only these figures"
  )
  parser.add_argument(
    "--size", choices=SIZES, default=None, help="each figure's get_config(size) (default: default)"
  )
  parser.add_argument(
    "--full", action="store_true", help="paper-size runs (meant for accelerators): --size full"
  )
  parser.add_argument(
    "--set",
    nargs="+",
    action="extend",
    metavar="KEY=VALUE",
    default=[],
    dest="overrides",
    help="override config fields of the selected figures",
  )
  args = parser.parse_args(argv)
  if args.full and args.size not in (None, "full"):
    parser.error(f"--full means --size full, not --size {args.size}; give one of them")
  args.size = "full" if args.full else (args.size or "default")
  if args.only:
    unknown = sorted(set(args.only) - set(FIGURES))
    if unknown:
      parser.error(f"unknown figure(s) {unknown}; choose from: {', '.join(FIGURES)}")
  try:
    args.overrides = [_parse_override(item) for item in args.overrides]
  except ValueError as e:
    parser.error(str(e))
  return args


def _parse_override(item: str) -> tuple[str, object]:
  """'KEY=VALUE' -> (KEY, VALUE as a Python literal, else the string itself)."""
  key, sep, text = item.partition("=")
  if not sep or not key:
    raise ValueError(f"--set {item!r} is not KEY=VALUE (e.g. --set steps=2000)")
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  return key, value


# Config fields that count something: a positive number (an integer where the default is one).
_POSITIVE = re.compile(
  r"steps|batch|batch_size|eval_every|eval_size|epochs|trials|depth|dim|hidden|width|frames|"
  r"shots|num_\w+|\w+_steps|max_(train|val|test)"
)
_MAY_BE_NONE = re.compile(r"max_(train|val|test)")  # None: the whole split


def _check_override(name: str, key: str, value, default) -> None:
  """ValueError naming the figure, the key and what it accepts, for a value of `--set` that
  ml_collections took but the figure cannot run with: None or a bool for a number, or out of
  range (module docstring)."""
  where = f"--set {key}={value!r} for figure {name!r}"
  kind = {bool: "True or False", int: "an integer", float: "a number", str: "a string"}.get(
    type(default), f"a {type(default).__name__}"
  )
  if value is None:
    if default is None or _MAY_BE_NONE.fullmatch(key):
      return
    raise ValueError(f"{where}: {key} takes {kind}, e.g. {default!r}")
  if isinstance(value, bool) and not isinstance(default, bool | type(None)):
    raise ValueError(f"{where}: {key} takes {kind}, e.g. {default!r}")
  if not isinstance(value, int | float) or isinstance(value, bool):
    if key == "seeds" and isinstance(value, tuple):
      if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise ValueError(f"{where}: seeds are integers >= 0, e.g. (0, 1, 2)")
    return
  if key == "seed":
    if not isinstance(value, int) or value < 0:
      raise ValueError(f"{where}: a seed is an integer >= 0, e.g. 0")
  elif _POSITIVE.fullmatch(key) or key in ("seeds", "learning_rate"):
    if not (value > 0 and math.isfinite(value)):
      kind = "an integer" if isinstance(default, int | type(None)) else "a finite number"
      example = "" if default is None else f", e.g. {default!r}"
      raise ValueError(f"{where}: {key} must be {kind} > 0{example}")


def _config(name: str, size: str, overrides: list[tuple[str, object]]):
  """The figure's `get_config(size)` with `overrides` applied; None for a missing module.

  Raises ValueError naming the figure, the key and what it accepts, before anything runs.
  """
  try:
    module = importlib.import_module(f"experiments.figures.{name}")
  except ModuleNotFoundError as e:
    if e.name != f"experiments.figures.{name}":
      raise
    return None
  config = module.get_config(size)
  for key, value in overrides:
    if key not in config:
      raise ValueError(
        f"--set {key}=...: figure {name!r} has no config field {key!r}; its "
        f"fields are {', '.join(sorted(config.keys()))}"
      )
    if isinstance(config[key], str) and not isinstance(value, str):
      value = str(value)  # a string field keeps the text as typed ('--set dataset=1')
    default = config[key]
    try:
      config[key] = value
    except TypeError as e:
      raise ValueError(f"--set {key}={value!r} for figure {name!r}: {e}") from e
    _check_override(name, key, config[key], default)
  return config


def _build(name: str, config, out: pathlib.Path) -> tuple[dict, list[pathlib.Path]]:
  """Runs one figure; a missing module (config None) is reported as a failed entry."""
  if config is None:
    result = FigureResult(
      name,
      name,
      "not implemented yet",
      [check("module exists", "missing", f"experiments/figures/{name}.py", False)],
      {},
    )
    return result.as_dict(), []
  module = importlib.import_module(f"experiments.figures.{name}")
  result = module.run(config)
  paths = module.plot(result, out)
  entry = {**result.as_dict(), "config": config.to_dict()}
  fallback = _fallback(config, result.data)
  if fallback:
    entry["fallback"] = fallback
  return entry, [pathlib.Path(p) for p in paths]


def _fallback(config, data: dict) -> str | None:
  """A sentence when a figure asked for Fashion-MNIST and ran on another dataset (`_fit.load_data`
  falls back to the 8x8 digits when the files are absent), else None."""
  asked, ran = config.get("dataset"), data.get("dataset")
  if asked != "fashion_mnist_idx" or ran in (None, asked):
    return None
  return (
    f"ran on {ran}, not Fashion-MNIST: its files are absent (install the Debian package "
    "dataset-fashion-mnist, or set RESEARCH_FASHION_MNIST_DIR to a folder of the IDX files); "
    "its numbers are not the default size's"
  )


def _markdown(
  entries: list[dict],
  images: dict[str, list[pathlib.Path]],
  size: str,
  overrides: list[tuple[str, object]] = (),
) -> str:
  ok = sum(e["passed"] for e in entries)
  sets = "".join(f" {k}={v if isinstance(v, str) else repr(v)}" for k, v in overrides)
  lines = [
    "# The lecture's figures",
    "",
    f"{ok} of {len(entries)} figures pass their checks "
    f"({size} size). Built by "
    "`python -m experiments.figures --out DIR"
    + {"default": "", "full": " --full"}.get(size, f" --size {size}")
    + (f" --set{sets}" if sets else "")
    + "`.",
    "",
  ]
  for e in entries:
    mark = "PASS" if e["passed"] else "FAIL"
    lines += [f"## {e['name']}: {e['title']} ({mark})", "", e.get("caption", ""), ""]
    if e.get("fallback"):
      lines += [f"**Data: {e['fallback']}.**", ""]
    for p in images.get(e["name"], []):
      lines += [f"![{e['name']}]({p.name})", ""]
    paper = e.get("paper")
    if paper:
      lines += [
        "| | source | setup | number |",
        "|---|---|---|---|",
        f"| paper | {paper['source']} | {paper['setup']} | {paper['number']} |",
        "",
        "Ours, on the same claim:",
        "",
      ]
    lines += ["| check | measured | expected | passed |", "|---|---|---|---|"]
    for c in e["checks"]:
      lines.append(
        f"| {c['what']} | {_fmt(c['measured'])} | {_fmt(c['expected'])} | "
        f"{'yes' if c['passed'] else 'NO'} |"
      )
    lines.append("")
  return "\n".join(lines)


def _fmt(v) -> str:
  if isinstance(v, float):
    return f"{v:.4g}"
  if isinstance(v, list):
    return "[" + ", ".join(_fmt(x) for x in v) + "]"
  return str(v).replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
  args = _parse(sys.argv[1:] if argv is None else argv)
  names = [n for n in FIGURES if args.only is None or n in args.only]
  try:
    configs = {name: _config(name, args.size, args.overrides) for name in names}
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  runtime.configure()  # XLA:CPU flags and the compilation cache, before JAX starts
  args.out.mkdir(parents=True, exist_ok=True)
  entries, images = [], {}
  for i, name in enumerate(names, 1):
    start = time.perf_counter()
    entry, paths = _build(name, configs[name], args.out)
    entries.append(entry)
    images[name] = paths
    n_ok = sum(c["passed"] for c in entry["checks"])
    dataset = entry.get("data", {}).get("dataset")
    print(
      f"[{i}/{len(names)}] {name}: {'PASS' if entry['passed'] else 'FAIL'} "
      f"({n_ok}/{len(entry['checks'])} checks, {time.perf_counter() - start:.1f}s"
      + (f", {dataset}" if isinstance(dataset, str) else "")
      + ")"
      + (f"; {entry['fallback']}" if entry.get("fallback") else ""),
      flush=True,
    )
  (args.out / "report.json").write_text(json.dumps(entries, indent=1))
  (args.out / "REPORT.md").write_text(_markdown(entries, images, args.size, args.overrides))
  failed = [e["name"] for e in entries if not e["passed"]]
  print(
    f"{len(entries) - len(failed)} of {len(entries)} figures passed"
    + (f"; failed: {', '.join(failed)}" if failed else "")
    + f". Report: {args.out}/REPORT.md"
  )
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
