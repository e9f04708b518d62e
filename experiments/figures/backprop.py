"""Backpropagation on computational graphs, by hand in float64 and checked against `jax.grad`.

Notes 004 (~1290-1543, "计算图与反向传播算法"): a computational graph is a directed graph whose
nodes are operations; every gate computes (a) its output from its inputs and (b) the local
gradient of that output with respect to each input, and by the chain rule it passes back the
upstream gradient times the local gradient:

    dL/d(input_i) = dL/d(output) * d(output)/d(input_i),

summed over every gate that uses the input. Three examples of the notes:

* f = (x + y)^2: q = x + y, f = q^2; backward df/dq = 2q, df/dx = df/dq * 1, df/dy = df/dq * 1.
  Also drawn at a finer granularity, f = q * q, where q fans out to both inputs of a multiply
  gate (a copy gate) and its gradient is the sum q + q = 2q.
* The sigmoid neuron f(w, x) = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))), split into the gates with
  the notes' local derivatives e^x -> e^x, a x -> a, 1/x -> -1/x^2, c + x -> 1; and the coarser
  graph with one sigmoid gate, sigma'(s) = (1 - sigma(s)) sigma(s).
* The common gates (加法门, 乘法门, 拷贝门, max门): add passes the upstream gradient unchanged
  to both inputs, multiply passes each input the upstream gradient times the *other* input,
  copy (fan-out) sums the gradients coming back along its branches, max routes the whole
  upstream gradient to the larger input and 0 to the other; shown on f = 2 (x y + max(z, w)).

The text of the notes lost the slides' numbers (the graphs are images), so the inputs are ours:
x = 1, y = 2 for (x + y)^2; the classic values of the sigmoid-neuron example in CS231n's notes,
w = (2, -3, -3), x = (-1, -2) (f = 0.73); x = 3, y = -4, z = 2, w = -1 for the gates. Every
node's gradient from the hand backward pass is compared with `jax.grad` of the graph with that
node cut loose as an input; each gate rule is also checked with `jax.vjp` on random inputs.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.figures import common
from experiments.figures.common import FigureResult, check, check_close, check_less

NAME = "backprop"
TITLE = "Backpropagation on computational graphs: forward values, backward gradients, gate rules"
CAPTION = (
  "The notes' computational graphs worked by hand: above each edge the forward value (green), "
  "below it the gradient of the output flowing back along that edge (red). Top left: "
  "f = (x + y)^2 with q fanning out to a multiply gate (copy gate: the two gradients 3 + 3 add "
  "to df/dq = 2q = 6). Top right: add, multiply and max gates in f = 2 (xy + max(z, w)): add "
  "passes 2 to both inputs, multiply swaps the inputs (df/dx = 2y, df/dy = 2x), max sends 2 to "
  "z and 0 to w. Bottom: the sigmoid neuron gate by gate; the single sigmoid gate's "
  "(1 - f) f = 0.197 equals the product of the fine gates' local gradients. Every gradient "
  "equals jax.grad's to float64 round-off."
)
PAPER = common.Paper(
  source="the lecture, notes 004 ~1290-1543",
  setup=(
    "computational graphs of f = (x + y)^2, the sigmoid neuron 1 / (1 + exp(-(w0 x0 + w1 x1 + "
    "w2))) and the add / multiply / copy / max gates, worked forward and backward"
  ),
  number=(
    "each gate multiplies the upstream gradient by its local gradient (chain rule); "
    "sigma' = (1 - sigma) sigma; add distributes, multiply swaps, copy sums, max routes"
  ),
)

TOLERANCE = 1e-6  # |hand - autodiff|, float64
GATE_TOLERANCE = 1e-12  # the gate rules are exact up to one rounding


class Node(NamedTuple):
  """One node of a graph: `op` applied to the nodes named in `args` (and the constant `const`)."""

  name: str
  op: str  # "input" or a key of FORWARD
  args: tuple[str, ...] = ()
  const: float = 0.0


# Forward rule of each gate: (xp, argument values, constant) -> output; xp is numpy or jax.numpy.
FORWARD: dict[str, Callable] = {
  "add": lambda xp, a, c: a[0] + a[1],
  "mul": lambda xp, a, c: a[0] * a[1],
  "max": lambda xp, a, c: xp.maximum(a[0], a[1]),
  "square": lambda xp, a, c: a[0] * a[0],
  "scale": lambda xp, a, c: c * a[0],  # f_a(x) = a x
  "add_const": lambda xp, a, c: c + a[0],  # f_c(x) = c + x
  "exp": lambda xp, a, c: xp.exp(a[0]),
  "recip": lambda xp, a, c: 1.0 / a[0],
  "sigmoid": lambda xp, a, c: 1.0 / (1.0 + xp.exp(-a[0])),
}


def local_gradients(op: str, args: tuple[float, ...], out: float, const: float) -> tuple:
  """d(out)/d(arg_i) of one gate, written by hand from the notes' table of derivatives."""
  if op == "add":
    return (1.0, 1.0)
  if op == "mul":
    return (args[1], args[0])  # each input gets the other one
  if op == "max":
    first = 1.0 if args[0] > args[1] else 0.0
    return (first, 1.0 - first)
  if op == "square":
    return (2.0 * args[0],)
  if op == "scale":
    return (const,)
  if op == "add_const":
    return (1.0,)
  if op == "exp":
    return (out,)  # (e^x)' = e^x
  if op == "recip":
    return (-1.0 / args[0] ** 2,)
  if op == "sigmoid":
    return ((1.0 - out) * out,)  # sigma' = (1 - sigma) sigma
  raise ValueError(f"unknown gate {op!r}")


def forward(graph: tuple[Node, ...], inputs: dict, xp=np, cut: dict | None = None) -> dict:
  """Every node's value, in order; `cut` replaces the value of the named nodes (for autodiff)."""
  cut = cut or {}
  values = {}
  for node in graph:
    if node.name in cut:
      values[node.name] = cut[node.name]
    elif node.op == "input":
      values[node.name] = inputs[node.name]
    else:
      values[node.name] = FORWARD[node.op](xp, [values[a] for a in node.args], node.const)
  return values


def backward(graph: tuple[Node, ...], values: dict) -> tuple[dict, list]:
  """The hand backward pass from the last node (df/df = 1), in reverse order.

  Returns (grads, edges): grads[name] = df/d(node); edges: (src, dst, position, gradient sent
  back along the edge) where the gradient is grads[dst] times the gate's local gradient. A node
  used by several gates (fan-out) sums what comes back along its edges.
  """
  grads = {node.name: 0.0 for node in graph}
  grads[graph[-1].name] = 1.0
  edges = []
  for node in reversed(graph):
    if node.op == "input":
      continue
    args = tuple(float(values[a]) for a in node.args)
    local = local_gradients(node.op, args, float(values[node.name]), node.const)
    for i, (arg, d) in enumerate(zip(node.args, local, strict=True)):
      sent = grads[node.name] * d
      edges.append((arg, node.name, i, sent))
      grads[arg] += sent
  return grads, edges


def autodiff_gradients(graph: tuple[Node, ...], inputs: dict) -> dict:
  """df/d(node) for every node by `jax.grad` in float64, the node cut loose as an input."""
  out = graph[-1].name
  with jax.enable_x64(True):
    values = forward(graph, {k: jnp.float64(v) for k, v in inputs.items()}, jnp)
    grads = {}
    for node in graph:

      def f(t, name=node.name):
        return forward(graph, inputs, jnp, cut={name: t})[out]

      grads[node.name] = float(jax.grad(f)(jnp.float64(values[node.name])))
  return grads


# ---------------------------------------------------------------------------- the notes' graphs

SQUARE = (
  Node("x", "input"),
  Node("y", "input"),
  Node("q", "add", ("x", "y")),
  Node("f", "square", ("q",)),
)
SQUARE_INPUTS = {"x": 1.0, "y": 2.0}
COPY = SQUARE[:3] + (Node("f", "mul", ("q", "q")),)  # q fans out: the copy gate

SIGMOID_FINE = (
  Node("w0", "input"),
  Node("x0", "input"),
  Node("w1", "input"),
  Node("x1", "input"),
  Node("w2", "input"),
  Node("a0", "mul", ("w0", "x0")),
  Node("a1", "mul", ("w1", "x1")),
  Node("s1", "add", ("a0", "a1")),
  Node("s", "add", ("s1", "w2")),
  Node("n", "scale", ("s",), -1.0),
  Node("e", "exp", ("n",)),
  Node("d", "add_const", ("e",), 1.0),
  Node("f", "recip", ("d",)),
)
SIGMOID_COARSE = SIGMOID_FINE[:9] + (Node("f", "sigmoid", ("s",)),)
SIGMOID_INPUTS = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}

GATES = (
  Node("x", "input"),
  Node("y", "input"),
  Node("z", "input"),
  Node("w", "input"),
  Node("p", "mul", ("x", "y")),
  Node("m", "max", ("z", "w")),
  Node("s", "add", ("p", "m")),
  Node("f", "scale", ("s",), 2.0),
)
GATES_INPUTS = {"x": 3.0, "y": -4.0, "z": 2.0, "w": -1.0}

GRAPHS = {
  "square": (SQUARE, SQUARE_INPUTS),
  "copy": (COPY, SQUARE_INPUTS),
  "sigmoid_fine": (SIGMOID_FINE, SIGMOID_INPUTS),
  "sigmoid_coarse": (SIGMOID_COARSE, SIGMOID_INPUTS),
  "gates": (GATES, GATES_INPUTS),
}


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.num_trials = 1000  # random (inputs, upstream gradient) per gate rule
  config.seed = 0
  return common.sized(size, config)  # exact and tiny: one size for all


def work_graph(graph: tuple[Node, ...], inputs: dict) -> dict:
  """Forward and hand backward pass of one graph in float64, with jax.grad's gradients beside."""
  values = forward(graph, {k: np.float64(v) for k, v in inputs.items()})
  grads, edges = backward(graph, values)
  auto = autodiff_gradients(graph, inputs)
  return {
    "values": {k: float(v) for k, v in values.items()},
    "grads": grads,
    "autodiff": auto,
    "edges": [list(e) for e in edges],
    "max_error": max(abs(grads[k] - auto[k]) for k in grads),
  }


# ----------------------------------------------------------------------------- the gate rules


def gate_rule(gate: str, a: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple:
  """The rule of each common gate: gradients to its inputs from the upstream gradient(s) g.

  add, mul, max: inputs (a, b), one upstream g. copy: one input a, two outputs with the
  upstream gradients (g, b) coming back along the two branches.
  """
  if gate == "add":
    return g, g  # distributes unchanged
  if gate == "mul":
    return g * b, g * a  # swaps the inputs and scales
  if gate == "max":
    return np.where(a > b, g, 0.0), np.where(a > b, 0.0, g)  # routes to the larger input
  if gate == "copy":
    return (g + b,)  # sums
  raise ValueError(f"unknown gate {gate!r}")


def gate_autodiff(gate: str, a: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple:
  """The same gradients by `jax.vjp` in float64, one example at a time (vmapped)."""
  funs = {
    "add": lambda u, v: u + v,
    "mul": lambda u, v: u * v,
    "max": lambda u, v: jnp.maximum(u, v),
  }
  with jax.enable_x64(True):
    a, b, g = (jnp.asarray(t, jnp.float64) for t in (a, b, g))
    if gate == "copy":

      def pull(u, g1, g2):
        return jax.vjp(lambda t: (t, t), u)[1]((g1, g2))

      return tuple(np.asarray(t) for t in jax.vmap(pull)(a, g, b))

    def pull2(u, v, up):
      return jax.vjp(funs[gate], u, v)[1](up)

    return tuple(np.asarray(t) for t in jax.vmap(pull2)(a, b, g))


def gate_holds(gate: str, a: np.ndarray, b: np.ndarray, g: np.ndarray, grads: tuple) -> bool:
  """Whether jax's gradients follow the rule exactly as stated in words."""
  if gate == "add":
    return bool(np.all(grads[0] == g) and np.all(grads[1] == g))
  if gate == "mul":
    return bool(np.all(grads[0] == g * b) and np.all(grads[1] == g * a))
  if gate == "max":
    win = a > b
    return bool(
      np.all(np.where(win, grads[0], grads[1]) == g)
      and np.all(np.where(win, grads[1], grads[0]) == 0.0)
    )
  return bool(np.allclose(grads[0], g + b, rtol=0.0, atol=GATE_TOLERANCE))


def saturation_gradients(num: int = 4001) -> dict:
  """Local gradients of the sigmoid and tanh gates on x in [-20, 20] (float64): jax.grad beside
  the notes' formulas sigma' = (1 - sigma) sigma and tanh' = 1 - tanh^2. sigma' is at most
  1/4, so every sigmoid layer at least quarters the gradient passing back; beyond abs(x) = 10
  both are nearly 0 (a saturated unit stops the gradient)."""
  with jax.enable_x64(True):
    x = jnp.linspace(-20.0, 20.0, num, dtype=jnp.float64)
    ds = jax.vmap(jax.grad(jax.nn.sigmoid))(x)
    dt = jax.vmap(jax.grad(jnp.tanh))(x)
    s, t = jax.nn.sigmoid(x), jnp.tanh(x)
    x, ds, dt, s, t = (np.asarray(v) for v in (x, ds, dt, s, t))
  far = np.abs(x) >= 10.0
  summary = {
    "formula_error": float(max(np.abs(ds - (1 - s) * s).max(), np.abs(dt - (1 - t * t)).max())),
    "sigmoid_max": float(ds.max()),
    "sigmoid_argmax": float(x[np.argmax(ds)]),
    "tanh_max": float(dt.max()),
    "tanh_argmax": float(x[np.argmax(dt)]),
    "sigmoid_beyond_10": float(ds[far].max()),
    "tanh_beyond_10": float(dt[far].max()),
  }
  return {"x": x, "sigmoid": ds, "tanh": dt, "summary": summary}


def run(config: ml_collections.ConfigDict) -> FigureResult:
  worked = {name: work_graph(graph, inputs) for name, (graph, inputs) in GRAPHS.items()}
  max_error = max(w["max_error"] for w in worked.values())
  count = sum(len(w["grads"]) for w in worked.values())
  checks = [
    check_less(
      f"max abs(hand - jax.grad) over the {count} node gradients of the five graphs (float64)",
      max_error,
      TOLERANCE,
    )
  ]
  sq, cp = worked["square"], worked["copy"]
  q = sq["values"]["q"]
  checks.append(
    check(
      "(x+y)^2 at x=1, y=2: [q, f, df/dq, df/dx, df/dy] = [3, 9, 2q, 2q, 2q]",
      [q, sq["values"]["f"], sq["grads"]["q"], sq["grads"]["x"], sq["grads"]["y"]],
      [3.0, 9.0, 6.0, 6.0, 6.0],
      [q, sq["values"]["f"], sq["grads"]["q"], sq["grads"]["x"], sq["grads"]["y"]]
      == [3.0, 9.0, 6.0, 6.0, 6.0],
    )
  )
  copy_sent = sorted(e[3] for e in cp["edges"] if e[0] == "q" and e[1] == "f")
  checks.append(
    check(
      "copy gate in f = q*q: the two gradients coming back to q, and their sum (= 2q)",
      [*copy_sent, cp["grads"]["q"]],
      [q, q, 2 * q],
      copy_sent == [q, q] and cp["grads"]["q"] == 2 * q,
    )
  )
  fine, coarse = worked["sigmoid_fine"], worked["sigmoid_coarse"]
  f = fine["values"]["f"]
  checks.append(check_close("sigmoid neuron output f(w, x)", f, 0.7311, rtol=0.0, atol=1e-4))
  checks.append(
    check_less(
      "abs((1 - f) f - df/ds from the fine gates' chain) (the sigmoid gate's shortcut)",
      abs((1.0 - f) * f - fine["grads"]["s"]),
      GATE_TOLERANCE,
    )
  )
  inputs = ("w0", "x0", "w1", "x1", "w2")
  checks.append(
    check_less(
      "max abs(fine - coarse graph) over df/dw0, dx0, dw1, dx1, dw2",
      max(abs(fine["grads"][k] - coarse["grads"][k]) for k in inputs),
      GATE_TOLERANCE,
    )
  )

  rng = np.random.default_rng(config.seed)
  gates = {}
  for gate in ("add", "mul", "copy", "max"):
    a, b, g = rng.normal(size=(3, config.num_trials))
    hand = gate_rule(gate, a, b, g)
    auto = gate_autodiff(gate, a, b, g)
    err = max(float(np.max(np.abs(h - t))) for h, t in zip(hand, auto, strict=True))
    gates[gate] = {"max_error": err, "holds": gate_holds(gate, a, b, g, auto)}
  words = {
    "add": "both inputs get the upstream g",
    "mul": "inputs get g * (the other input)",
    "copy": "the input gets g1 + g2",
    "max": "the larger input gets g, the smaller exactly 0",
  }
  for gate, info in gates.items():
    checks.append(
      check(
        f"{gate} gate, {config.num_trials} random cases: {words[gate]} (jax.vjp); "
        "max abs(rule - vjp)",
        info["max_error"],
        f"rule holds, < {GATE_TOLERANCE:g}",
        info["holds"] and info["max_error"] < GATE_TOLERANCE,
      )
    )
  ex = worked["gates"]["grads"]
  example = [ex["p"], ex["m"], ex["x"], ex["y"], ex["z"], ex["w"]]
  checks.append(
    check(
      "f = 2(xy + max(z,w)) at (3, -4, 2, -1): df/d[xy, max, x, y, z, w]",
      example,
      [2.0, 2.0, -8.0, 6.0, 2.0, 0.0],
      example == [2.0, 2.0, -8.0, 6.0, 2.0, 0.0],
    )
  )
  local = saturation_gradients()
  checks.append(
    check(
      "sigmoid and tanh gates' local gradients on x in [-20, 20] (notes 004 ~1562-1625): "
      "max abs(jax.grad - (1 - s) s) and abs(jax.grad - (1 - t^2)); the largest local gradient "
      "(at x = 0); the largest at abs(x) >= 10, where the gate passes back almost nothing",
      local["summary"],
      "errors < 1e-12; sigmoid' <= 1/4 and tanh' <= 1, each reached at 0; both < 1e-4 at "
      "abs(x) >= 10",
      local["summary"]["formula_error"] < GATE_TOLERANCE
      and abs(local["summary"]["sigmoid_max"] - 0.25) < 1e-15
      and abs(local["summary"]["tanh_max"] - 1.0) < 1e-15
      and max(abs(local["summary"]["sigmoid_argmax"]), abs(local["summary"]["tanh_argmax"])) < 1e-9
      and max(local["summary"]["sigmoid_beyond_10"], local["summary"]["tanh_beyond_10"]) < 1e-4,
    )
  )
  data = {"graphs": worked, "gates": gates, "max_error": max_error, "local": local}
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


# ------------------------------------------------------------------------------------ plotting

# (x, y) of each node in its panel
LAYOUTS = {
  "copy": {"x": (0, 1), "y": (0, -1), "q": (1.4, 0), "f": (3.0, 0)},
  "gates": {
    "x": (0, 1.5),
    "y": (0, 0.5),
    "z": (0, -0.5),
    "w": (0, -1.5),
    "p": (1.4, 1.0),
    "m": (1.4, -1.0),
    "s": (2.8, 0),
    "f": (4.0, 0),
  },
  "sigmoid_fine": {
    "w0": (0, 2.4),
    "x0": (0, 1.2),
    "w1": (0, 0.0),
    "x1": (0, -1.2),
    "w2": (0, -2.4),
    "a0": (1.3, 1.8),
    "a1": (1.3, -0.6),
    "s1": (2.5, 0.5),
    "s": (3.7, 0.0),
    "n": (4.9, 0.0),
    "e": (6.1, 0.0),
    "d": (7.3, 0.0),
    "f": (8.5, 0.0),
  },
}
GLYPH = {
  "add": "+",
  "mul": "×",
  "max": "max",
  "square": "^2",
  "scale": "×c",
  "add_const": "+c",
  "exp": "exp",
  "recip": "1/x",
  "sigmoid": "σ",
}


def _draw_graph(ax, graph: tuple[Node, ...], worked: dict, layout: dict, title: str) -> None:
  values = worked["values"]
  ops = {n.name: n for n in graph}
  fans = {}
  for src, dst, _, _ in worked["edges"]:
    fans[(src, dst)] = fans.get((src, dst), 0) + 1
  seen = {}
  for src, dst, _, sent in worked["edges"]:
    k = seen[(src, dst)] = seen.get((src, dst), 0) + 1
    rad = 0.0 if fans[(src, dst)] == 1 else (0.35 if k == 1 else -0.35)
    (x0, y0), (x1, y1) = layout[src], layout[dst]
    ax.annotate(
      "",
      xy=(x1, y1),
      xytext=(x0, y0),
      arrowprops={
        "arrowstyle": "->",
        "color": "0.4",
        "shrinkA": 13,
        "shrinkB": 13,
        "connectionstyle": f"arc3,rad={rad}",
      },
    )
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2 - rad * abs(x1 - x0) * 0.5
    ax.text(mx, my + 0.09, f"{values[src]:.3g}", color="green", ha="center", fontsize=8)
    ax.text(mx, my - 0.09, f"{sent:.3g}", color="red", ha="center", va="top", fontsize=8)
  for name, (x, y) in layout.items():
    node = ops[name]
    label = name if node.op == "input" else GLYPH[node.op]
    if node.op in ("scale", "add_const"):
      label = f"{'×' if node.op == 'scale' else '+'}{node.const:g}"
    ax.text(
      x,
      y,
      label,
      ha="center",
      va="center",
      fontsize=9,
      bbox={"boxstyle": "circle", "fc": "lightyellow" if node.op == "input" else "lightblue"},
    )
    if node.op != "input":
      ax.text(x, y + 0.3, name, ha="center", fontsize=7, color="0.3")
  out = graph[-1].name
  x, y = layout[out]
  ax.text(x + 0.35, y, f"f = {values[out]:.3g}", va="center", fontsize=9)
  xs, ys = zip(*layout.values(), strict=True)
  ax.set_xlim(min(xs) - 0.5, max(xs) + 1.2)
  ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
  ax.set_axis_off()
  ax.set_title(title, fontsize=10)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data["graphs"]
  fig = common.figure((15, 9.5), title=TITLE)
  grid = fig.add_gridspec(2, 5)
  ax = fig.add_subplot(grid[0, :2])
  _draw_graph(
    ax,
    COPY,
    d["copy"],
    LAYOUTS["copy"],
    "f = (x + y)^2 = q·q: add gate, then q copied into a multiply gate\n"
    f"df/dq = {d['copy']['grads']['q']:g} = 2q (copy sums), df/dx = df/dy = "
    f"{d['copy']['grads']['x']:g}",
  )
  ax = fig.add_subplot(grid[0, 2:])
  _draw_graph(
    ax,
    GATES,
    d["gates"],
    LAYOUTS["gates"],
    "f = 2 (xy + max(z, w)): add distributes, multiply swaps, max routes",
  )
  ax = fig.add_subplot(grid[1, :])
  s_grad = d["sigmoid_fine"]["grads"]["s"]
  _draw_graph(
    ax,
    SIGMOID_FINE,
    d["sigmoid_fine"],
    LAYOUTS["sigmoid_fine"],
    "sigmoid neuron f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) gate by gate; "
    f"df/ds = {s_grad:.4f} = (1 - f) f; max |hand - jax.grad| over all graphs "
    f"{result.data['max_error']:.1e}",
  )
  fig.text(0.01, 0.01, "green: forward value; red: gradient sent back", fontsize=9)
  return [common.save_figure(fig, out_dir, NAME, rect=(0, 0.02, 1, 0.96))]
