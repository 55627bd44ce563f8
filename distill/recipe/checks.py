"""Checks a recipe needs beyond its schema, made before any work starts: everything that can be known
without loading weights or data (``distill validate`` and the start of ``distill run``).

The schema checks types, ranges and cross-field rules; these check the recipe against the machine:
local model folders and data files exist, the output folder can be written, the eval tasks exist
(distill's ``evals/tasks``, the recipe's ``eval.include_path``, then lm-eval's own registry), and the
launcher's resources agree with the accelerate config. Each problem is one ``RecipeError`` line
naming the file, the key and the value. Nothing here writes anything.
"""
from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

from distill.recipe.loading import RecipeError
from distill.recipe.schema import DataRef, DatasetWorld, Recipe
from distill.recipe.settings import check_settings
from distill.registry import did_you_mean

PACKAGED_BUILDERS = ("json", "csv", "parquet", "text", "arrow")  # datasets' file-format loaders
TASKS_DIR = Path(__file__).resolve().parents[2] / "evals" / "tasks"
_TASK_KEY = re.compile(r"^(?:task|group|tag)\s*:\s*(.+?)\s*$", re.MULTILINE)


def check_recipe(recipe: Recipe, where: str, *, tasks: bool = True, launcher: str | None = None) -> None:
    """Raise ``RecipeError`` on the first problem; ``tasks=False`` skips the eval task lookup;
    ``launcher`` checks only the resources that launcher reads (None: every launcher's)."""
    check_output_dir(recipe, where)
    check_models(recipe, where)
    check_data(recipe, where)
    check_eval_paths(recipe, where)
    check_settings(recipe, where)
    _check_resources(recipe, where, launcher)
    if tasks:
        check_tasks(recipe, where)


# ----------------------------------------------------------------------------- output folder
def check_output_dir(recipe: Recipe, where: str) -> None:
    """``<output_dir>/<name>`` can be created and written: no file in the way, write permission."""
    run_dir = Path(recipe.output_dir).expanduser() / recipe.name
    key = f"output_dir={recipe.output_dir!r}"
    for folder in [run_dir, *run_dir.parents]:
        if not os.path.lexists(folder):
            continue
        if not folder.is_dir():
            raise RecipeError(f"{where}: {key}: {str(folder)!r} is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise RecipeError(f"{where}: {key}: {str(folder)!r} is not writable")
        return


# ----------------------------------------------------------------------------- models and data
def looks_local(name: str) -> bool:
    """A path rather than a hub id: absolute, ``./``, ``../``, ``~``, or naming something that exists.
    A hub id is ``name`` or ``org/name``."""
    return (name.startswith(("/", "./", "../", "~", ".\\")) or name in (".", "..")
            or name.count("/") > 1 or os.path.lexists(os.path.expanduser(name)))


def check_models(recipe: Recipe, where: str) -> None:
    specs = [("teacher.model", recipe.teacher.model), ("student.model", recipe.student.model)]
    specs += [(f"teachers.{i}.model", t.model) for i, t in enumerate(getattr(recipe, "teachers", None) or [])]
    for key, name in specs:
        if name is None or not looks_local(name):
            continue
        path = Path(name).expanduser()
        if not path.exists():
            raise RecipeError(f"{where}: {key}={name!r}: no such model folder (nor a hub id: org/name)")
        if not (path / "config.json").is_file():
            raise RecipeError(f"{where}: {key}={name!r}: not a model folder (no config.json in it)")
        try:
            config = json.loads((path / "config.json").read_bytes())
        except (ValueError, OSError) as exc:  # transformers would fail on it in the first step that loads it
            raise RecipeError(f"{where}: {key}={name!r}: {path / 'config.json'} is not valid JSON "
                              f"({exc})") from None
        if not isinstance(config, dict):
            raise RecipeError(f"{where}: {key}={name!r}: {path / 'config.json'} is not a JSON object")


def data_refs(recipe: Recipe) -> list[tuple[str, DataRef]]:
    world = recipe.world
    if not isinstance(world, DatasetWorld):
        return []
    return [(f"world.{k}", getattr(world, k)) for k in ("human", "prompts", "test")]


def data_files(ref: DataRef) -> list[str]:
    files = ref.data_files
    if files is None:
        return []
    if isinstance(files, str):
        return [files]
    if isinstance(files, list):
        return list(files)
    return [f for v in files.values() for f in ([v] if isinstance(v, str) else v)]


def check_data(recipe: Recipe, where: str) -> None:
    for key, ref in data_refs(recipe):
        if ref.path in PACKAGED_BUILDERS:
            if ref.data_files is None:
                raise RecipeError(f"{where}: {key}.path={ref.path!r} reads local files: set {key}.data_files")
            for pattern in data_files(ref):
                _check_data_file(where, f"{key}.data_files", pattern)
        elif looks_local(ref.path) and not Path(ref.path).expanduser().exists():
            raise RecipeError(f"{where}: {key}.path={ref.path!r}: no such file or folder (nor a hub "
                              "id: org/name)")


def _check_data_file(where: str, key: str, pattern: str) -> None:
    if "://" in pattern:  # a URL: datasets fetches it, nothing to check here
        return
    path = os.path.expanduser(pattern)
    matches = glob.glob(path) if glob.has_magic(path) else [path] if os.path.lexists(path) else []
    if not matches:
        raise RecipeError(f"{where}: {key}={pattern!r}: no such file")
    for match in matches:
        if not os.path.exists(match):  # os.path.lexists found it: a link to nothing, or a loop of links
            raise RecipeError(f"{where}: {key}={match!r}: a symbolic link that leads to no file "
                              "(broken or a loop)")
        if os.path.isdir(match):  # distill reads json, csv and parquet files itself, one by one
            raise RecipeError(f"{where}: {key}={match!r}: is a folder; name its files (a glob: "
                              f"{os.path.join(pattern, '*.jsonl')!r})")
        if not os.path.isfile(match):
            # a named pipe or a device: the dataset reader would block on it or never reach its end
            raise RecipeError(f"{where}: {key}={match!r}: not a regular file")
        if os.path.isfile(match) and not os.access(match, os.R_OK):
            raise RecipeError(f"{where}: {key}={match!r}: not readable")


def check_eval_paths(recipe: Recipe, where: str) -> None:
    inc = recipe.eval.include_path
    if inc is not None and not Path(inc).expanduser().is_dir():
        raise RecipeError(f"{where}: eval.include_path={inc!r}: no such folder")


def _check_resources(recipe: Recipe, where: str, launcher: str | None = None) -> None:
    """Resources against the accelerate config (distill/allocation.py owns the rules)."""
    try:
        from distill.allocation import check_resources
    except ImportError:
        return
    try:
        check_resources(recipe, where, launcher)
    except (OSError, ValueError) as exc:
        raise RecipeError(str(exc).splitlines()[0] if str(exc).startswith(where)
                          else f"{where}: {exc}") from None


# ----------------------------------------------------------------------------- eval tasks
def task_names_in(folders: list[Path]) -> set[str]:
    """Task, group and tag names declared in task YAMLs, read as text (no lm-eval import: fast)."""
    names: set[str] = set()
    for folder in folders:
        for path in folder.rglob("*.yaml"):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            for raw in _TASK_KEY.findall(text):
                names.update(n.strip(" '\"") for n in raw.strip("[]").split(","))
    return names


def check_tasks(recipe: Recipe, where: str) -> None:
    """Every ``eval.tasks`` name is a task, group or tag lm-eval will find. Our own folders are read
    first (as text, then with lm-eval's TaskManager); only a name not found there needs lm-eval's
    whole registry, whose names are kept on disk per lm-eval version (indexing it takes 15-80 s)."""
    folders = ([TASKS_DIR]
               + ([Path(recipe.eval.include_path).expanduser()] if recipe.eval.include_path else []))
    missing = [t for t in recipe.eval.tasks if t not in task_names_in(folders)]
    if missing:
        from lm_eval.tasks import TaskManager

        ours = set(TaskManager(include_path=[str(f) for f in folders], include_defaults=False).all_tasks)
        missing = [t for t in missing if t not in ours]
    if not missing:
        return
    known = registry_names()
    for task in missing:
        if task in known:
            continue
        hint = did_you_mean(task, known, n=3, list_known=False)
        i = recipe.eval.tasks.index(task)
        raise RecipeError(f"{where}: eval.tasks.{i}={task!r}: no such lm-eval task in its registry, "
                          f"evals/tasks or eval.include_path{hint}")


def registry_names() -> set[str]:
    """lm-eval's built-in task, group and tag names (and ours), read from a file in the distill cache
    once they have been indexed for this lm-eval version."""
    import json
    import logging
    from importlib import metadata

    from distill.artifacts import atomic_write_json

    cache = Path(os.environ.get("DISTILL_CACHE", Path.home() / ".cache" / "distill"))
    path = cache / "lm_eval_tasks" / f"{metadata.version('lm_eval')}.json"
    if path.is_file():
        return set(json.loads(path.read_text())) | task_names_in([TASKS_DIR])
    if str(path) in _INDEXED:  # indexed in this process, but the cache could not be written
        return _INDEXED[str(path)]
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # it warns about every odd YAML it indexes
    names = sorted(TaskManager(include_defaults=True).all_tasks)
    try:
        atomic_write_json(path, names)
    except OSError:  # a read-only cache: keep them for this process
        _INDEXED[str(path)] = set(names) | task_names_in([TASKS_DIR])
    return set(names) | task_names_in([TASKS_DIR])


_INDEXED: dict[str, set[str]] = {}
