"""The docs stay true: relative links resolve, shown `python -m` commands accept --help, every
package is described in docs/layout.md, and the import rules it states hold (read from the source,
so a violation fails even when no test happens to import the module)."""

import ast
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
MARKDOWN = sorted(
  p
  for p in REPO.rglob("*.md")
  if not any(
    part.startswith(".") or part in ("checkpoints", "node_modules")
    for part in p.relative_to(REPO).parts
  )
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"python -m ([a-zA-Z_][\w.]*)")


def _headings(path: pathlib.Path) -> set[str]:
  """GitHub's anchors of a Markdown file's headings."""
  anchors = set()
  for line in path.read_text().splitlines():
    if line.startswith("#"):
      text = line.lstrip("#").strip().lower()
      anchors.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
  return anchors


def test_the_markdown_files_are_found():
  names = {str(p.relative_to(REPO)) for p in MARKDOWN}
  assert {
    "README.md",
    "docs/layout.md",
    "experiments/figures/README.md",
    "experiments/benchmarks/README.md",
    "launch/README.md",
  } <= names


def test_the_readme_is_short():
  assert len((REPO / "README.md").read_text().splitlines()) <= 200


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path):
  broken = []
  for target in LINK.findall(path.read_text()):
    if re.match(r"^[a-z]+:", target):
      continue  # https:, mailto:
    file, _, anchor = target.partition("#")
    resolved = (path.parent / file).resolve() if file else path
    if not resolved.exists():
      broken.append(target)
    elif anchor and resolved.suffix == ".md" and anchor not in _headings(resolved):
      broken.append(target)
  assert not broken, f"{path.relative_to(REPO)}: links that resolve to nothing: {broken}"


def test_every_shown_python_m_command_accepts_help():
  modules = sorted({m for p in MARKDOWN for m in COMMAND.findall(p.read_text())})
  assert "research.main" in modules and "research.sweep" in modules
  procs = {
    m: subprocess.Popen(
      [sys.executable, "-m", m, "--help"],
      cwd=REPO,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for m in modules
  }
  failed = {}
  for module, proc in procs.items():
    out, _ = proc.communicate(timeout=300)
    if proc.returncode != 0 or "usage" not in out.lower() and "flags" not in out.lower():
      failed[module] = (proc.returncode, out[-500:])
  assert not failed, failed


def test_layout_describes_every_package():
  layout = (REPO / "docs" / "layout.md").read_text()
  packages = sorted(
    str(p.parent.relative_to(REPO)) + "/"
    for top in ("research", "experiments")
    for p in (REPO / top).rglob("__init__.py")
    if p.parent != REPO / top
  )
  missing = [p for p in packages if f"`{p}`" not in layout]
  assert not missing, f"docs/layout.md does not describe {missing}"
  loose = sorted(
    f"research/{p.name}" for p in (REPO / "research").glob("*.py") if p.name != "__init__.py"
  )
  assert all(f"`{m}`" in layout for m in loose), loose


def _imports(path: pathlib.Path) -> set[str]:
  tree = ast.parse(path.read_text())
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names.add(node.module)
  return names


def test_import_rules_hold_in_the_source():
  allowed_optim = {"jax", "optax", "numpy", "research.optim"}
  stdlib = set(sys.stdlib_module_names)
  bad = []
  for path in sorted((REPO / "research").rglob("*.py")):
    rel = path.relative_to(REPO)
    for name in _imports(path):
      top = name.split(".")[0]
      if top == "experiments":
        bad.append(f"{rel} imports {name}: the package never imports experiments/")
      if (
        rel.parts[1] == "optim"
        and top not in stdlib
        and not any(name == a or name.startswith(a + ".") for a in allowed_optim)
      ):
        bad.append(f"{rel} imports {name}: research.optim imports only jax, optax, numpy")
      if rel.parts[1] in ("models", "data", "optim") and name.startswith(
        ("research.train", "research.sweep", "research.main")
      ):
        bad.append(f"{rel} imports {name}: no import runs back up")
      if rel.parts[1] == "train" and name.startswith(("research.sweep", "research.main")):
        bad.append(f"{rel} imports {name}: no import runs back up")
      if rel.parts[1] == "errors.py" and top not in stdlib:
        bad.append(f"{rel} imports {name}: research.errors imports only the standard library")
  assert not bad, bad
