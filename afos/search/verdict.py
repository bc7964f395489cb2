"""What a confirmation says: the function it names (:func:`winner`) and the one sentence a search ends with
(:func:`verdict_sentence`), read from its :class:`~afos.search.confirmation.Finalist` rows.

Why a module of its own: the report, ``afos runs``, ``afos export`` and ``afos serve`` all read a verdict,
while only a search runs a confirmation; the words live here once, beside nothing that trains.
"""

from __future__ import annotations

from collections.abc import Sequence

from afos.records.runs import Role, Verdict
from afos.search.config import RELU
from afos.search.confirmation import ALPHA, Finalist


def winner(rows: Sequence[Finalist]) -> Finalist | None:
    """The function a confirmation names: the best finalist confirmed better than ReLU, else the best by
    confirmed validation (None without finalists). The verdict sentence, ``afos export`` and ``afos runs``
    all take this one."""
    finalists = [r for r in rows if r.role is Role.FINALIST]
    if any(r.verdict is Verdict.PENDING for r in finalists):
        return None  # a confirmation under way or stopped names no function
    better = [r for r in finalists if r.verdict is Verdict.BETTER]
    ranked = better or finalists
    return ranked[0] if ranked else None


def verdict_sentence(rows: Sequence[Finalist]) -> str:
    """The one sentence a search ends with: does any confirmed finalist beat ReLU beyond noise?"""
    finalists = [r for r in rows if r.role is Role.FINALIST]
    pending = sum(r.verdict is Verdict.PENDING for r in finalists)
    if pending:
        return (f"The confirmation has not finished ({pending} of {len(finalists)} finalists, or ReLU, still lack "
                "some of its seeds): no verdict yet.")
    best = winner(rows)
    if best is None:
        return "No finalist was confirmed (no function of the hall of fame trained ok)."
    if best.verdict is Verdict.BETTER:
        return (f"{best.canonical} beats ReLU: {_points(best.delta_vs_relu)} points test accuracy "
                f"(95 % CI {_points(best.delta_ci_low, sign=False)} – {_points(best.delta_ci_high, sign=False)}), "
                f"p_holm = {best.p_holm:.3g}, {best.n_seeds} seeds.{_against_strongest(best)}")
    if best.failed:
        return (f"No finalist beats ReLU: every finalist failed on some confirmation seed ({best.canonical}: "
                f"{best.failed} of {best.n_seeds}).")
    spread = "" if best.delta_ci_high is None or best.delta_vs_relu is None else \
        f" (95 % CI {_points(best.delta_ci_low, sign=False)} – {_points(best.delta_ci_high, sign=False)})"
    p = "" if best.p_holm is None else f", p_holm = {best.p_holm:.3g}"
    return (f"No finalist beats ReLU beyond noise (best by confirmed validation: {best.canonical}, "
            f"{_points(best.delta_vs_relu)} points test{spread}{p}, {best.n_seeds} seeds).")


def _against_strongest(best: Finalist, alpha: float = ALPHA) -> str:
    """What the verdict adds when the strongest baseline is not ReLU: does the winner beat that one too?"""
    name = best.strongest_baseline
    if name is None or name == RELU:
        return ""
    p = "" if best.p_holm_vs_strongest is None else f", p_holm = {best.p_holm_vs_strongest:.3g}"
    numbers = f"{_points(best.delta_vs_strongest)} points{p}"
    if best.p_holm_vs_strongest is not None and best.p_holm_vs_strongest < alpha:
        return f" It also beats the strongest baseline, {name}: {numbers}."
    return f" It does not beat the strongest baseline, {name}, beyond noise ({numbers})."


def _points(value: float | None, *, sign: bool = True) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:+.2f}" if sign else f"{100 * value:.2f}"
