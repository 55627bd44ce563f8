"""The embedded world: column arithmetic with written-out steps, built from seeds, no downloads.

A prompt is ``Q:347+589=``; the human solution works column by column from the right, writing each
carry or borrow, then the answer: ``7+9=16;4+8+1=13;3+5+1=9;A:936``. Subtraction always takes the
larger operand first: ``Q:532-187=`` -> ``12-7=5;12-8=4;4-1=3;A:345`` (a borrowed column shows the
digit plus ten). Every problem is a pure function of (world seed, stream, index), so each stream is
unlimited and reproducible; the test stream is held out of every training stream by construction.
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from distill.recipe.schema import ArithmeticWorld

ANSWER = re.compile(r"A:(-?\d+)")
STREAMS = ("test", "human", "prompts", "teacher", "val")


@dataclass(frozen=True)
class Problem:
    id: str
    a: int
    op: str
    b: int

    @property
    def prompt(self) -> str:
        return f"Q:{self.a}{self.op}{self.b}="

    @property
    def answer(self) -> str:
        return str(self.a + self.b if self.op == "+" else self.a - self.b)

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.a, self.op, self.b)


def solve(a: int, op: str, b: int) -> str:
    """The human style: one step per column, right to left, then ``A:<answer>``."""
    top, bottom = str(a)[::-1], str(b)[::-1].ljust(len(str(a)), "0")
    steps, carry = [], 0
    for i, t_char in enumerate(top):
        t, u = int(t_char), int(bottom[i])
        if op == "+":
            s = t + u + carry
            steps.append(f"{t}+{u}+1={s}" if carry else f"{t}+{u}={s}")
            carry = s // 10
        else:
            t -= carry
            carry = int(t < u)
            steps.append(f"{t + 10 * carry}-{u}={t + 10 * carry - u}")
    result = a + b if op == "+" else a - b
    return ";".join(steps) + f";A:{result}"


def extract_answer(text: str) -> str | None:
    match = ANSWER.search(text)
    return match.group(1) if match else None


def verify(problem: Problem, completion: str) -> bool:
    return extract_answer(completion) == problem.answer


def _rng(seed: int, stream: str, index: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}/{stream}/{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _draw(world: ArithmeticWorld, stream: str, index: int) -> Problem:
    rng = _rng(world.seed, stream, index)
    op = rng.choice(world.ops)
    a, b = (rng.randint(10 ** (d - 1), 10**d - 1) for d in
            (rng.randint(world.min_digits, world.max_digits) for _ in range(2)))
    if op == "-" and b > a:
        a, b = b, a
    return Problem(id=f"{stream}-{index}", a=a, op=op, b=b)


def problems(world: ArithmeticWorld, stream: str, count: int, start: int = 0) -> list[Problem]:
    """``count`` problems of a stream; training streams skip every problem in the test split."""
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; expected one of {STREAMS}")
    if stream == "test":
        return [_draw(world, "test", i) for i in range(start, start + count)]
    held_out = {p.key for p in problems(world, "test", world.test_size)}
    out, index = [], start
    while len(out) < count:
        problem = _draw(world, stream, index)
        if problem.key not in held_out:
            out.append(problem)
        index += 1
    return out


def record(problem: Problem, completion: str | None = None, origin: str = "human") -> dict:
    """A source row: ``{id, prompt, completion, origin, meta}`` (completion defaults to the human one)."""
    return {
        "id": problem.id,
        "prompt": problem.prompt,
        "completion": solve(problem.a, problem.op, problem.b) if completion is None else completion,
        "origin": origin,
        "meta": {"answer": problem.answer},
    }


def tokenizer_corpus(world: ArithmeticWorld, lines: int = 2000) -> list[str]:
    """Text to train the world's tokenizer on: prompts and solutions from the teacher stream."""
    return [p.prompt + solve(p.a, p.op, p.b) for p in problems(world, "teacher", lines)]
