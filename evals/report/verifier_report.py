"""The report's verifier section: step marks as a PRM that reranks a student's n samples, against
majority vote over the same samples and an outcome-only scorer, with paired intervals over prompts;
and each scorer's first-error localisation on held-out marked drafts.

``section(verifier, level)`` reads the ``verifier`` step's results (``distill/human/verifier_step.py``),
as the records carry them in ``meta.verifier``; it returns the blocks and a JSON summary.
"""
from __future__ import annotations

from collections.abc import Mapping

from evals.analysis.formatting import ci, number
from evals.analysis.paired import mcnemar, paired_difference

NAMES = {"first": "first sample (no reranking)", "majority": "majority vote",
         "prm_min": "PRM best-of-n (min of step scores)", "prm_product": "PRM best-of-n (product)",
         "outcome_min": "outcome-only scorer best-of-n (min)",
         "outcome_product": "outcome-only scorer best-of-n (product)",
         "oracle": "oracle (pass@n: any sample right)"}
VERSUS = (("prm_min", "majority"), ("prm_product", "majority"), ("prm_min", "outcome_min"),
          ("majority", "first"))


def _against_no_mark(loc: Mapping, level: float, summary: dict) -> str:
    """Each scorer's localisation against always saying "no mark" (a scorer that never fires scores the
    share of correct drafts): below it, the scorer's marks do more harm than good."""
    said = []
    for name, label in (("prm", "PRM"), ("outcome", "outcome-only scorer")):
        # a verifier step from before per-draft items were kept: the point estimates only
        if "items" not in loc:
            side = "below" if loc[name] < loc["no_mark_baseline"] else "not below"
            said.append(f"{label} {side} it (no per-draft items to judge noise)")
            continue
        iv = paired_difference(loc["items"][name], loc["items"]["no_mark_baseline"], level=level)
        verdict = "within noise of" if iv.lower <= 0 <= iv.upper else ("below" if iv.upper < 0 else "above")
        said.append(f"{label} {ci(iv, signed=True)} points: {verdict} it")
        summary["localisation_vs_no_mark"] = {**summary.get("localisation_vs_no_mark", {}),
                                              name: {"estimate": iv.estimate, "lo": iv.lower, "hi": iv.upper,
                                                     "verdict": verdict}}
    return (f"Against always 'no mark' ({round(100 * level)}% paired interval over drafts): "
            + "; ".join(said) + ".")


def section(verifier: Mapping, level: float) -> tuple[list[tuple], dict]:
    if not verifier.get("feasible", False):
        return [("h", 2, "Step marks as a verifier"), ("p", "The reranked student's mix was infeasible.")], {}
    items, n = verifier["items"], verifier["samples"]
    rows = [[NAMES.get(m, m), f"{100 * sum(x) / len(x):.1f}"] for m, x in items.items()]
    diffs, summary = [], {"accuracy": verifier["accuracy"], "differences": {}}
    for a, b in VERSUS:
        iv, test = paired_difference(items[a], items[b], level=level), mcnemar(items[a], items[b])
        inside = iv.lower <= 0 <= iv.upper
        diffs.append([f"{NAMES[a]} - {NAMES[b]}", number(iv.estimate, signed=True),
                      ci(iv, signed=True, with_estimate=False),
                      f"{test.p_value:.3g}", "within noise" if inside else "outside noise"])
        summary["differences"][f"{a}-{b}"] = {"estimate": iv.estimate, "lo": iv.lower, "hi": iv.upper,
                                              "p_value": test.p_value, "within_noise": inside}
    loc = verifier["localisation"]
    # per-draft items stay in the step
    summary["localisation"] = {k: v for k, v in loc.items() if k != "items"}
    hours = verifier["marks_human_s"] / 3600
    text = (f"Arm {verifier['arm']!r} at N={verifier['n']}: {n} samples on each of {verifier['prompts']} "
            "test prompts "
            f"(temperature sampling). The PRM learnt from {verifier['marks_trained']} first-error marks "
            f"({hours:.3g} expert hours; steps after a mark: {verifier['after_mark']}); the outcome-only "
            "scorer from "
            f"the same drafts labelled by the verifier alone (no expert time). Both start from the "
            f"{verifier['init']}. Intervals: {round(100 * level)}% paired bootstrap over prompts; McNemar p.")
    localisation = (f"First-error localisation on {loc['drafts']} held-out marked drafts (first step "
                    "scored below "
                    f"0.5 = the expert's mark; no mark counts): PRM {100 * loc['prm']:.1f}%, "
                    "outcome-only scorer "
                    f"{100 * loc['outcome']:.1f}%, always 'no mark' {100 * loc['no_mark_baseline']:.1f}%. "
                    + _against_no_mark(loc, level, summary))
    blocks = [("h", 2, "Step marks as a verifier: best-of-n"), ("p", text),
              ("table", ["method", "accuracy (%)"], rows),
              ("table", ["difference", "points", f"{round(100 * level)}% interval", "McNemar p", "verdict"],
               diffs),
              ("p", localisation)]
    return blocks, summary
