"""CHAMP's human first-error labels in, as a ``first_error`` source (labels that people made).

CHAMP (Mao et al., 2024; the package ``champ-dataset``, extra ``distill[champ]``) holds 270 competition
problems, each with model solutions (GPT-3.5, GPT-4, GPT-4 Turbo, PaLM 2 Medium; two prompt settings)
whose first wrong step people marked. Its data file ``champ_dataset/dataset_files/v0.json`` maps
``problems`` to ``{identifier, _text (the problem), _answer, fws_annotations}``; ``fws_annotations``
maps ``"<model>|<prompt setting>"`` to ``{text (the model's solution), start_idx, end_idx (characters
of the first wrong step; both null: no mistake), author (the model)}``.

Each annotation becomes one ``first_error`` row (``distill.human.primitives.first_error_row``):
prompt = the problem, completion = the model's solution, ``learn_chars`` = ``start_idx`` (training
learns only the characters before the wrong step). CHAMP records no labelling time: rows are priced
with ``mark_s`` (the recipe's ``experts.times.mark_s``) and say so in ``meta.time_source``.

    python -m distill.human.champ OUT_FOLDER [--data v0.json] [--mark-s 12]   # OUT/source, OUT/work.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from distill.human.annotation import ImportRowError, check_seconds
from distill.human.expert import Action
from distill.human.first_error import first_error_row
from distill.human.primitives import Work

TIME_SOURCE = "recipe experts.times.mark_s (CHAMP records no labelling time)"


class _Annotators:
    name = "champ:annotators"  # CHAMP names the model behind each solution, not the person who marked it
    simulated = False


def bundled_file() -> Path:
    """``v0.json`` inside the installed ``champ-dataset`` package."""
    from importlib.util import find_spec

    spec = find_spec("champ_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("champ-dataset is not installed: pip install 'distill[champ]' (or "
                                "champ-dataset)")
    return Path(next(iter(spec.submodule_search_locations))) / "dataset_files" / "v0.json"


def _span(ann: dict, path, i: int, tid: str) -> tuple[int, int] | None:
    text, start, end = ann.get("text"), ann.get("start_idx"), ann.get("end_idx")
    if not isinstance(text, str) or not text.strip():
        raise ImportRowError(path, i, tid, f"text {text!r:.40} is not a non-empty solution")
    if start is None and end is None:
        return None
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end))
    if not ints or not 0 <= start < end <= len(text):
        raise ImportRowError(path, i, tid, f"start_idx={start!r}, end_idx={end!r} is not a span of the "
                                           f"{len(text)}-character solution (or both null)")
    return start, end


def champ_rows(data: dict, path: str | Path, mark_s: float) -> Work:
    """Every problem's annotated solutions as ``first_error`` rows (one bad annotation: an error)."""
    problems = data.get("problems") if isinstance(data, dict) else None
    if not isinstance(problems, dict):
        raise ValueError(f"{path}: expected a mapping with 'problems' (CHAMP v0.json), got "
                         f"{type(data).__name__}")
    seconds = check_seconds(mark_s, path, 0, None, "mark_s")
    work = Work("first_error")
    for i, (pid, problem) in enumerate(problems.items()):
        prompt = problem.get("_text") if isinstance(problem, dict) else None
        annotations = problem.get("fws_annotations") if isinstance(problem, dict) else None
        if not isinstance(prompt, str) or not isinstance(annotations, dict):
            raise ImportRowError(path, i, pid, "problem has no _text string or no fws_annotations mapping")
        for key, ann in annotations.items():
            tid = f"{pid}|{key}"
            if not isinstance(ann, dict):
                raise ImportRowError(path, i, tid, f"annotation is not a mapping: {ann!r:.40}")
            span = _span(ann, path, i, tid)
            draft = {"id": tid, "prompt": prompt, "completion": ann["text"]}
            meta = {"prompt_id": pid, "answer": str(problem.get("_answer", ""))}
            row = first_error_row(draft, meta, Action("mark", seconds), _Annotators(), span=span)
            row["meta"].update(time_source=TIME_SOURCE, solver=str(ann.get("author")),
                               setting=key.split("|", 1)[-1], dataset="champ-v0")
            work.rows.append(row)
            work.items += 1
    return work


def import_champ(path: str | Path | None = None, mark_s: float = 12.0) -> Work:
    """Read CHAMP's ``v0.json`` (default: the installed package's) into ``first_error`` rows."""
    import json

    path = Path(path) if path is not None else bundled_file()
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err.msg} at line {err.lineno})") from None
    return champ_rows(data, path, mark_s)


def main(argv: list[str] | None = None) -> int:
    from distill.artifacts import atomic_write_json
    from distill.sources import save_source

    parser = argparse.ArgumentParser(description="Write CHAMP's first-error labels as a first_error source.")
    parser.add_argument("out", type=Path, help="folder to write: OUT/source (the source) and OUT/work.json")
    parser.add_argument("--data", type=Path, default=None, help="CHAMP v0.json (default: champ-dataset's)")
    parser.add_argument("--mark-s", type=float, default=12.0,
                        help="seconds one mark is priced at (default 12)")
    args = parser.parse_args(argv)
    try:
        work = import_champ(args.data, args.mark_s)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    save_source(work.rows, args.out / "source")
    atomic_write_json(args.out / "work.json", {**work.summary(), "expert": "champ", "simulated": False})
    marked = sum("learn_chars" in r["meta"] for r in work.rows)
    print(f"champ: {len(work.rows)} first_error rows ({marked} with a marked wrong step) -> "
          f"{args.out / 'source'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
