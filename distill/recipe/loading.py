"""Load a recipe file, apply ``key.sub=value`` overrides, validate, and explain failures in one line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from distill.recipe.schema import Recipe
from distill.registry import did_you_mean


class RecipeError(ValueError):
    """A recipe problem, already phrased as one line naming the file, the key and the bad value."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """``mixes.sizes=[100,200]`` -> (['mixes', 'sizes'], [100, 200]); values are YAML scalars/lists."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise RecipeError(f"override {text!r}: expected key.sub=value")
    try:
        value = yaml.load(raw, Loader=StrictLoader) if raw.strip() else raw
    except yaml.YAMLError as exc:
        raise RecipeError(f"override {text!r}: value is not valid YAML ({_yaml_problem(exc)})") from None
    return key.split("."), value


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What a YAML error says, in one line (a ReaderError, e.g. a control character, has no ``problem``)."""
    text = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
    return text.strip().splitlines()[0]


def apply_override(tree: dict, path: list[str], value: Any, origin: str) -> None:
    node: Any = tree
    for i, part in enumerate(path[:-1]):
        if isinstance(node, list):
            node = node[_index(part, node, origin)]
            continue
        if not isinstance(node, dict):
            raise RecipeError(f"override {origin!r}: {'.'.join(path[: i])} is not a section")
        node = node.setdefault(part, {})
    last = path[-1]
    if isinstance(node, list):
        node[_index(last, node, origin)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise RecipeError(f"override {origin!r}: {'.'.join(path[:-1])} is not a section")


def _index(part: str, node: list, origin: str) -> int:
    if not part.isdecimal() or int(part) >= len(node):
        raise RecipeError(f"override {origin!r}: list index {part!r} out of range (length {len(node)})")
    return int(part)


_MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that rejects a key written twice in one mapping (the second would silently
    replace the first). Keys brought in by a ``<<:`` merge may still be overridden, as YAML intends."""


def _unique_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: the base constructor reports it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first written at line {first + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_yaml_text(text: str, where: str) -> Any:
    """Parse YAML strictly; a problem becomes one line naming ``where`` and the line."""
    try:
        return yaml.load(text, Loader=StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark else ""
        problem = _yaml_problem(exc)
        raise RecipeError(f"{where}:{at} not valid YAML ({problem})") from None


def read_text_file(path: Path, what: str = "recipe file") -> str:
    """A text file's contents, or one line saying why it cannot be read (missing, a folder, binary)."""
    if path.is_dir():
        raise RecipeError(f"{path}: is a folder, not a {what}")
    if not path.exists():
        lost = path.is_symlink()  # the link is there, what it names is not (or links loop)
        raise RecipeError(f"{path}: a symbolic link that leads to no {what} (broken or a loop)" if lost
                          else f"{path}: no such {what}")
    if not path.is_file():  # a named pipe would block the read forever, a device never end it
        raise RecipeError(f"{path}: is a {_file_kind(path)}, not a regular {what}")
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise RecipeError(f"{path}: {path.stat().st_size} bytes is too large for a {what} "
                          f"(at most {MAX_TEXT_BYTES >> 20} MiB)")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not a text {what} (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start} is not UTF-8)") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None


MAX_TEXT_BYTES = 16 << 20  # recipes and configs are a few KiB; anything this large is not one


def _file_kind(path: Path) -> str:
    import stat

    mode = path.stat().st_mode
    kinds = {stat.S_ISFIFO: "named pipe", stat.S_ISCHR: "character device", stat.S_ISBLK: "block device",
             stat.S_ISSOCK: "socket"}
    return next((name for test, name in kinds.items() if test(mode)), "special file")


def read_yaml(path: Path) -> dict:
    tree = load_yaml_text(read_text_file(path), str(path))
    if tree is None:
        raise RecipeError(f"{path}: the recipe is empty (expected a mapping with at least name, "
                          "mixes, train)")
    if not isinstance(tree, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping, got {type(tree).__name__}")
    return tree


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    path = Path(path)
    tree = read_yaml(path)
    given: dict[str, tuple[str, Any]] = {}
    for text in overrides:
        keys, value = parse_override(text)
        dotted = ".".join(keys)
        if dotted in given and given[dotted][1] != value:  # which one wins would be a guess
            raise RecipeError(f"override {text!r}: {dotted} is already set by {given[dotted][0]!r}; "
                              "give it once")
        given[dotted] = (text, value)
        apply_override(tree, keys, value, text)
    return validate_tree(tree, str(path))


def validate_tree(tree: dict, where: str) -> Recipe:
    try:
        return Recipe.model_validate(tree)
    except ValidationError as exc:
        raise RecipeError(f"{where}: {_first_error(exc, tree)}") from None


def _first_error(exc: ValidationError, tree: dict) -> str:
    errors = exc.errors(include_url=False)
    # an unknown key usually explains the 'missing' error beside it (a typo): report it first
    err = min(errors, key=lambda e: e["type"] != "extra_forbidden")
    loc = [str(p) for p in err["loc"]]
    # discriminated unions add the tag ('arithmetic') to the location: not a key the user wrote
    loc = [p for p, raw in zip(loc, err["loc"]) if not _is_union_tag(raw, loc)]
    # a key the user wrote may hold a newline or other control character: the error stays one line
    dotted = "".join(c if c.isprintable() else repr(c)[1:-1] for c in ".".join(loc)) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        hint = _close_matches(loc, tree)
        return f"unknown key '{dotted}'{hint}"
    if kind == "missing":
        return f"missing required key '{dotted}'"
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "union_tag_invalid":
        tags = err["ctx"]["expected_tags"]
        return f"{dotted}.kind: bad value {err['ctx']['tag']!r}: expected one of {tags}"
    if isinstance(value, dict):  # a cross-field rule: the message names the keys involved
        return f"{dotted}: {msg}" if loc else msg
    return f"{dotted}: bad value {_short(value)}: {msg}"


def _is_union_tag(raw: Any, loc: list[str]) -> bool:
    return raw in ("arithmetic", "dataset")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _close_matches(loc: list[str], tree: dict) -> str:
    """Suggest field names of the section the unknown key sits in."""
    model: type[BaseModel] | None = Recipe
    node: Any = tree
    for part in loc[:-1]:
        if part.isdigit():
            node = node[int(part)] if isinstance(node, list) else node
            continue
        node = node.get(part, {}) if isinstance(node, dict) else {}
        model = _field_model(model, part, node)
        if model is None:
            return ""
    return did_you_mean(loc[-1], model.model_fields, n=3, list_known=False)


def _field_model(model: type[BaseModel] | None, name: str, node: Any) -> type[BaseModel] | None:
    if model is None or name not in model.model_fields:
        return None
    annotation = model.model_fields[name].annotation
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for arg in list(candidates):
        candidates.extend(getattr(arg, "__args__", ()))  # Annotated[Union[...]] and list[...]
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    if len(models) > 1 and isinstance(node, dict):  # a discriminated union: pick by its tag
        tag = node.get("kind")
        models = [m for m in models if m.model_fields.get("kind") and m.model_fields["kind"].default == tag]
    return models[0] if models else None


def resolved_yaml(recipe: Recipe) -> str:
    """The fully resolved recipe (defaults filled in), as saved next to every output."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
