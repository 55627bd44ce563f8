"""Task adapters: everything dataset-specific about a real task lives here, one small class each.

An adapter maps a dataset row to distill's fields (prompt, reference completion, answer) and says how
to read the final answer out of a completion. Adding a task means adding an adapter (and a recipe).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from distill.registry import TASK_ADAPTERS


def _number(text: str) -> str:
    """Normalise a numeric answer: drop thousands separators, '$', trailing '.', and '.0'."""
    text = text.strip().replace(",", "").replace("$", "").rstrip(".")
    if re.fullmatch(r"-?\d+\.0+", text):
        text = text.split(".")[0]
    return text


@dataclass(frozen=True)
class Adapter:
    name: str
    prompt: Callable[[dict], str]
    completion: Callable[[dict], str | None]  # the human solution, when the dataset has one
    answer: Callable[[dict], str]  # the gold final answer of a row
    extract_answer: Callable[[str], str | None]  # the final answer a completion states
    fields: tuple[str, ...] = ()  # the text fields every row must hold (checked row by row on reading)


# GSM8K: solutions end with "#### <number>"; the prompt follows lm-eval's gsm8k task
# ("Question: ...\nAnswer:") so students are trained on the format they are evaluated with. The
# reasoning-gym world (world/reasoning_gym.py) writes and reads its rows through these same functions.
_GSM8K_MARK = re.compile(r"####[ \t]*([^\n]*)")
_GSM8K_NUMBER = re.compile(r"-?[\d,\.\$]+")


def gsm8k_prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def gsm8k_final(text: str) -> str | None:
    """What the first ``#### `` line of a GSM8K-format solution states, as written (stripped)."""
    match = _GSM8K_MARK.search(text)
    return match.group(1).strip() if match else None


def _gsm8k_extract(text: str) -> str | None:
    """The number a GSM8K-format solution ends with, normalised (``#### 1,200.`` -> ``1200``)."""
    final = gsm8k_final(text)
    match = _GSM8K_NUMBER.match(final) if final is not None else None
    return _number(match.group(0)) if match else None


GSM8K = Adapter(
    name="gsm8k",
    prompt=lambda row: gsm8k_prompt(row["question"]),
    completion=lambda row: " " + row["answer"].strip(),
    answer=lambda row: _gsm8k_extract(row["answer"]) or "",
    extract_answer=_gsm8k_extract,
    fields=("question", "answer"),
)

# MetaMathQA-style augmented questions ("query", "response" ending in "The answer is: X"): a larger
# prompt pool for the teacher; its answers verify teacher outputs written in GSM8K's format.
_METAMATH_FINAL = re.compile(r"The answer is:?\s*(.+?)\s*$")


def _metamath_answer(row: dict) -> str:
    match = _METAMATH_FINAL.search(row["response"].strip())
    return _number(match.group(1)) if match else ""


METAMATH = Adapter(
    name="metamath",
    prompt=lambda row: gsm8k_prompt(row["query"]),
    completion=lambda row: None,  # its solutions are machine-written: never human data
    answer=_metamath_answer,
    extract_answer=_gsm8k_extract,
    fields=("query", "response"),
)

def get_adapter(name: str) -> Adapter:
    """The adapter named in a recipe (``TASK_ADAPTERS`` in distill/registry.py lists them)."""
    return TASK_ADAPTERS.load(name)
