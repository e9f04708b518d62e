"""Cross-entropy vs multiclass SVM loss on the slides' score vectors; H(p, q) = H(p) + KL(p||q).

The slides (004, "cross-entropy loss vs multiclass SVM loss") score three examples whose true
class is 0: s = [10, -2, 3], [10, 9, 9], [10, -100, -100], and print the losses

    L_CE  = -log(e^{s_y} / sum_j e^{s_j})        -> 0.0004, 0.2395, 1.5e-48
    L_SVM = sum_{j != y} max(0, s_j - s_y + 1)   -> 0, 0, 0

The printed cross-entropies are in base 10 (natural-log values / ln 10); we compute them with
`research.models.softmax_cross_entropy` (natural log) in float64 and convert. The SVM loss is
zero as soon as every margin exceeds 1, while cross-entropy keeps rewarding larger margins.
The entropy identity H(p, q) = -sum p log q = H(p) + KL(p || q) is checked on random pairs and on
the slides' q = (0.21, 0.01, 0.78) with the one-hot p = bird.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.figures import common
from experiments.figures.common import FigureResult, check, check_close, check_less
from research.models.losses import multiclass_svm_loss, softmax_cross_entropy

NAME = "losses"
TITLE = "Cross-entropy vs multiclass SVM loss on the slides' scores; H(p,q) = H(p) + KL(p||q)"
CAPTION = (
  "Left: the two losses of the slides' three score vectors (true class 0). The SVM (hinge) "
  "loss is 0 for all three, since every margin exceeds 1; cross-entropy still separates them "
  "(the slides print base-10 values). Middle: both losses of s = [m, 0, 0] against the margin "
  "m: the hinge reaches 0 at m = 1, cross-entropy only decays. Right: H(p, q) split into H(p) "
  "and KL(p || q) for random pairs and the slides' example."
)

SLIDE_SCORES = ((10.0, -2.0, 3.0), (10.0, 9.0, 9.0), (10.0, -100.0, -100.0))
SLIDE_CE_BASE10 = (0.0004, 0.2395, 1.5e-48)
SLIDE_Q = (0.21, 0.01, 0.78)  # classifier's distribution over (bird, cat, car)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.num_pairs = 200
  config.num_classes = 10
  config.seed = 0
  return common.sized(size, config)  # exact and tiny: one size for all


def entropy(p: jax.Array) -> jax.Array:
  """H(p) = -sum_x p(x) log p(x) (0 log 0 = 0). p: (..., C)."""
  return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), -1)


def cross_entropy(p: jax.Array, q: jax.Array) -> jax.Array:
  """H(p, q) = -sum_x p(x) log q(x). p, q: (..., C)."""
  return -jnp.sum(jnp.where(p > 0, p * jnp.log(q), 0.0), -1)


def kl_divergence(p: jax.Array, q: jax.Array) -> jax.Array:
  """KL(p || q) = -sum_x p(x) log(q(x) / p(x)). p, q: (..., C)."""
  ratio = jnp.where(p > 0, q / jnp.where(p > 0, p, 1.0), 1.0)
  return -jnp.sum(jnp.where(p > 0, p * jnp.log(ratio), 0.0), -1)


def _losses(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-example package losses (float32) of score rows (N, C) whose true class is 0."""
  labels = jnp.zeros((1,), jnp.int32)
  ce = [softmax_cross_entropy(jnp.asarray(s[None], jnp.float32), labels) for s in scores]
  svm = [multiclass_svm_loss(jnp.asarray(s[None], jnp.float32), labels) for s in scores]
  return np.asarray(ce, np.float64), np.asarray(svm, np.float64)


def exact_cross_entropy(scores: np.ndarray) -> np.ndarray:
  """L = log(1 + sum_{j != 0} e^{s_j - s_0}) in float64 (no underflow for tiny losses). (N,)."""
  scores = np.asarray(scores, np.float64)
  return np.log1p(np.exp(scores[:, 1:] - scores[:, :1]).sum(-1))


def run(config: ml_collections.ConfigDict) -> FigureResult:
  checks = []
  slide = np.asarray(SLIDE_SCORES, np.float64)
  ce, svm = _losses(slide)
  exact = exact_cross_entropy(slide)
  ce10 = exact / np.log(10.0)
  for s, got, want in zip(SLIDE_SCORES, ce10, SLIDE_CE_BASE10, strict=True):
    checks.append(
      check_close(
        f"log(1+sum e^(s_j-s_y))/ln10 of {list(s)} vs the slide's {want:g}",
        float(got),
        want,
        rtol=0.05,
      )
    )
  checks.append(
    check_less(
      "max abs(package CE (float32) - exact CE) on the slide scores",
      float(np.max(np.abs(ce - exact))),
      1e-6,
    )
  )
  with jax.enable_x64(True):
    checks.append(
      check(
        "SVM loss of the three slide scores (all margins > 1)",
        svm.tolist(),
        [0.0, 0.0, 0.0],
        bool(np.all(svm == 0.0)),
      )
    )
    checks.append(
      check(
        "CE decreases as the margin grows: [10,9,9] > [10,-2,3] > [10,-100,-100]",
        exact.tolist(),
        "strictly decreasing in that order",
        exact[1] > exact[0] > exact[2] > 0,
      )
    )

    margins = np.linspace(-3.0, 4.0, 141)
    sweep = np.stack([margins, np.zeros_like(margins), np.zeros_like(margins)], -1)
    ce_sweep, svm_sweep = _losses(sweep)
    zero_from = float(margins[np.argmax(svm_sweep == 0.0)])
    checks.append(
      check_close(
        "smallest margin m where the SVM loss of [m, 0, 0] is 0",
        zero_from,
        1.0,
        rtol=0.0,
        atol=0.051,
      )
    )

    rng = np.random.default_rng(config.seed)
    p = rng.dirichlet(np.ones(config.num_classes), config.num_pairs)
    q = rng.dirichlet(np.ones(config.num_classes), config.num_pairs)
    h_pq, h_p, kl = (np.asarray(a) for a in (cross_entropy(p, q), entropy(p), kl_divergence(p, q)))
    gap = float(np.max(np.abs(h_pq - (h_p + kl))))
    checks.append(check_less("max abs(H(p,q) - H(p) - KL(p‖q)) over random pairs", gap, 1e-12))
    checks.append(
      check("min KL(p‖q) over random pairs (>= 0)", float(kl.min()), ">= 0", float(kl.min()) >= 0.0)
    )

    q_slide = np.asarray(SLIDE_Q)
    p_bird = np.asarray([1.0, 0.0, 0.0])
    slide_terms = [
      float(cross_entropy(p_bird, q_slide)),
      float(entropy(p_bird)),
      float(kl_divergence(p_bird, q_slide)),
    ]
    package_ce = float(
      softmax_cross_entropy(jnp.log(jnp.asarray(q_slide))[None], jnp.zeros((1,), jnp.int32))
    )
  checks.append(
    check_close(
      "one-hot p: H(p,q) = -log q_bird = package CE", slide_terms[0], package_ce, rtol=1e-6
    )
  )
  checks.append(
    check(
      "one-hot p: [H(p), KL(p‖q)] = [0, H(p,q)]",
      slide_terms[1:],
      [0.0, slide_terms[0]],
      slide_terms[1] == 0.0 and abs(slide_terms[2] - slide_terms[0]) < 1e-12,
    )
  )
  checks.append(
    check_close("one-hot p: H(p,q) = -log 0.21", slide_terms[0], -float(np.log(0.21)), rtol=1e-12)
  )

  data = {
    "slide_scores": [list(s) for s in SLIDE_SCORES],
    "cross_entropy_natural": exact.tolist(),
    "cross_entropy_package_float32": ce.tolist(),
    "cross_entropy_base10": ce10.tolist(),
    "svm": svm.tolist(),
    "margin_sweep": margins.tolist(),
    "ce_sweep": ce_sweep.tolist(),
    "svm_sweep": svm_sweep.tolist(),
    "identity_max_gap": gap,
    "examples_h_pq": h_pq[:5].tolist(),
    "examples_h_p": h_p[:5].tolist(),
    "examples_kl": kl[:5].tolist(),
    "slide_h_pq_h_p_kl": slide_terms,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  fig, axes = common.subplots(1, 3, figsize=(15, 4.3), title=TITLE)
  ax = axes[0]
  x = np.arange(3)
  ce = np.maximum(np.asarray(d["cross_entropy_base10"]), 1e-60)
  ax.bar(x - 0.2, ce, 0.4, label="cross-entropy (base 10)")
  ax.bar(x + 0.2, np.maximum(d["svm"], 1e-60), 0.4, label="multiclass SVM (= 0)")
  for i, v in enumerate(d["cross_entropy_base10"]):
    ax.text(i - 0.2, max(v, 1e-60) * 2, f"{v:.4g}", ha="center", fontsize=8)
    ax.text(i + 0.2, 1e-58, f"SVM {d['svm'][i]:g}", ha="center", fontsize=8, color="C1")
  ax.set_yscale("log")
  ax.set_ylim(1e-60, 10)
  ax.set_xticks(x, [str([int(v) for v in s]) for s in d["slide_scores"]])
  ax.set_xlabel("scores s (true class 0)")
  ax.set_ylabel("loss L_i (log scale; SVM 0 drawn at the floor)")
  ax.set_title("The slides' three score vectors")
  ax.legend(fontsize=8)

  ax = axes[1]
  ax.plot(d["margin_sweep"], d["ce_sweep"], label="cross-entropy")
  ax.plot(d["margin_sweep"], d["svm_sweep"], label="multiclass SVM (hinge, margin 1)")
  ax.axvline(1.0, color="gray", ls=":", lw=1)
  ax.set_xlabel("margin m of scores [m, 0, 0]")
  ax.set_ylabel("loss L_i (natural log)")
  ax.set_title("Losses vs the correct class's margin")
  ax.legend(fontsize=8)

  ax = axes[2]
  labels = [f"pair {i}" for i in range(5)] + ["slide q,\none-hot p"]
  h_p = list(d["examples_h_p"]) + [d["slide_h_pq_h_p_kl"][1]]
  kl = list(d["examples_kl"]) + [d["slide_h_pq_h_p_kl"][2]]
  h_pq = list(d["examples_h_pq"]) + [d["slide_h_pq_h_p_kl"][0]]
  x = np.arange(len(labels))
  ax.bar(x, h_p, 0.6, label="H(p)")
  ax.bar(x, kl, 0.6, bottom=h_p, label="KL(p||q)")
  ax.plot(x, h_pq, "k_", ms=25, mew=2, label="H(p,q)")
  ax.set_xticks(x, labels, fontsize=8)
  ax.set_ylabel("nats")
  ax.set_title(f"H(p,q) = H(p) + KL(p||q)  (max gap {d['identity_max_gap']:.1e})")
  ax.legend(fontsize=8)
  return [common.save_figure(fig, out_dir, NAME)]
