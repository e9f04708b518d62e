"""Builds the lecture's figures and their report.

    python -m experiments.figures --out DIR [--only NAME ...] [--full]

writes DIR/NAME.png (and DIR/NAME.gif for animations), DIR/REPORT.md and DIR/report.json.
Exits 1 when any figure's checks fail (the report is written all the same).
"""

from __future__ import annotations

import argparse
import importlib
import json
import pathlib
import sys
import time

from experiments.figures import FIGURES
from experiments.figures.common import FigureResult, check


def _parse(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="python -m experiments.figures", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", required=True, type=pathlib.Path, help="output directory")
  parser.add_argument("--only", nargs="+", metavar="NAME", default=None,
                      help="build only these figures")
  parser.add_argument("--full", action="store_true",
                      help="paper-size runs (meant for accelerators)")
  args = parser.parse_args(argv)
  if args.only:
    unknown = sorted(set(args.only) - set(FIGURES))
    if unknown:
      parser.error(f"unknown figure(s) {unknown}; choose from: {', '.join(FIGURES)}")
  return args


def _build(name: str, out: pathlib.Path, full: bool) -> tuple[dict, list[pathlib.Path]]:
  """Runs one figure; a missing module is reported as a failed entry, not a crash."""
  try:
    module = importlib.import_module(f"experiments.figures.{name}")
  except ModuleNotFoundError as e:
    if e.name != f"experiments.figures.{name}":
      raise
    result = FigureResult(name, name, "not implemented yet",
                          [check("module exists", "missing", f"experiments/figures/{name}.py",
                                 False)], {})
    return result.as_dict(), []
  result = module.run(module.get_config(full=full))
  paths = module.plot(result, out)
  return result.as_dict(), [pathlib.Path(p) for p in paths]


def _markdown(entries: list[dict], images: dict[str, list[pathlib.Path]], full: bool) -> str:
  ok = sum(e["passed"] for e in entries)
  lines = ["# The lecture's figures", "",
           f"{ok} of {len(entries)} figures pass their checks "
           f"({'full' if full else 'default'} size). Built by "
           "`python -m experiments.figures --out DIR" + (" --full" if full else "") + "`.", ""]
  for e in entries:
    mark = "PASS" if e["passed"] else "FAIL"
    lines += [f"## {e['name']}: {e['title']} ({mark})", "", e.get("caption", ""), ""]
    for p in images.get(e["name"], []):
      lines += [f"![{e['name']}]({p.name})", ""]
    lines += ["| check | measured | expected | passed |", "|---|---|---|---|"]
    for c in e["checks"]:
      lines.append(f"| {c['what']} | {_fmt(c['measured'])} | {_fmt(c['expected'])} | "
                   f"{'yes' if c['passed'] else 'NO'} |")
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
  args.out.mkdir(parents=True, exist_ok=True)
  names = [n for n in FIGURES if args.only is None or n in args.only]
  entries, images = [], {}
  for i, name in enumerate(names, 1):
    start = time.perf_counter()
    entry, paths = _build(name, args.out, args.full)
    entries.append(entry)
    images[name] = paths
    n_ok = sum(c["passed"] for c in entry["checks"])
    print(f"[{i}/{len(names)}] {name}: {'PASS' if entry['passed'] else 'FAIL'} "
          f"({n_ok}/{len(entry['checks'])} checks, {time.perf_counter() - start:.1f}s)",
          flush=True)
  (args.out / "report.json").write_text(json.dumps(entries, indent=1))
  (args.out / "REPORT.md").write_text(_markdown(entries, images, args.full))
  failed = [e["name"] for e in entries if not e["passed"]]
  print(f"{len(entries) - len(failed)} of {len(entries)} figures passed"
        + (f"; failed: {', '.join(failed)}" if failed else "") + f". Report: {args.out}/REPORT.md")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
