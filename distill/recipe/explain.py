"""``distill validate --explain KEY``: a recipe key's description, type, default and allowed values, read
from the schema itself (each field's docstring is its description), so the text cannot drift from it.

A key is dotted (``train.lr``, ``mixes.arms.fraction``; list indices such as ``arms.0`` are skipped). A
section lists its fields one line each; under a union of world kinds each kind answers for itself.
"""
from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal, NamedTuple

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from distill.recipe.loading import RecipeError
from distill.recipe.schema import DatasetWorld, Recipe
from distill.registry import GENERATION_BACKENDS, HUMAN_PRIMITIVES, TASK_ADAPTERS, Registry, did_you_mean

# text fields checked against a registry when a recipe loads (their type is str, not a Literal)
_NAMED_BY: dict[tuple[type[BaseModel], str], Registry] = {
    (DatasetWorld, "adapter"): TASK_ADAPTERS, (DatasetWorld, "prompts_adapter"): TASK_ADAPTERS}
_REGISTRIES = (GENERATION_BACKENDS, HUMAN_PRIMITIVES)  # registries some Literals are built from
_NO_DEFAULT: Any = object()


class Found(NamedTuple):
    """One reading of a key: the model holding the field, the field, its default where the key leads."""

    model: type[BaseModel]
    name: str
    field: FieldInfo
    default: Any


def explain(key: str) -> str:
    """The text ``distill validate --explain KEY`` prints; a RecipeError (one line) for an unknown key."""
    parts = [p for p in key.strip().strip(".").split(".") if p and not p.isdigit() and p != "[]"]
    if not parts:
        return "\n".join(_child_line(Recipe, n, f, _NO_DEFAULT) for n, f in Recipe.model_fields.items())
    found = _resolve(key, parts)
    variants = len({f.model for f in found}) > 1
    return "\n\n".join(_block(key.strip(), f, variants) for f in found)


def _resolve(key: str, parts: list[str]) -> list[Found]:
    """Every (model, field) the dotted parts lead to: several where the key runs through a union."""
    here: list[tuple[type[BaseModel], Any]] = [(Recipe, _NO_DEFAULT)]
    found: list[Found] = []
    for depth, part in enumerate(parts):
        found = [Found(m, part, m.model_fields[part], _default_of(m, part, parent))
                 for m, parent in here if part in m.model_fields]
        if not found:
            known = {n for m, _ in here for n in m.model_fields}
            where = ".".join(parts[:depth]) or "the recipe"
            if not known:
                raise RecipeError(f"unknown recipe key {key!r}: {where} is a value, it has no keys")
            raise RecipeError(f"unknown recipe key {key!r}: {where} has no {part!r}"
                              + did_you_mean(part, known, n=3))
        here = [(m, f.default if isinstance(f.default, m) else _NO_DEFAULT)
                for f in found for m in _models(f.field.annotation)]
    return found


def _default_of(model: type[BaseModel], name: str, parent: Any) -> Any:
    """The default where the key leads: a section's own default value (``teacher.build.arch`` is not
    ``Arch()``) wins over the field's class default."""
    if isinstance(parent, model):
        return getattr(parent, name)
    field = model.model_fields[name]
    if field.default_factory is not None:
        return field.default_factory()
    return _NO_DEFAULT if field.default is PydanticUndefined else field.default


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The sections a field's type holds: itself, Optional, list items, dict values, union members."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _block(key: str, found: Found, variants: bool) -> str:
    model, name, field, default = found
    head = key + (f"   ({_kind_of(model)})" if variants else "")
    lines = [head, f"  {' '.join((field.description or '').split())}",
             f"  type:    {_type(field.annotation, field.metadata)}",
             f"  default: {_show(default)}"]
    if allowed := _allowed(model, name, field):
        lines.append(f"  allowed: {allowed}")
    for sub in _models(field.annotation):
        sub_default = default if isinstance(default, sub) else _NO_DEFAULT
        of_kind = f" of {_kind_of(sub)}" if len(_models(field.annotation)) > 1 else ""
        lines.append(f"  fields{of_kind} ({sub.__name__}):")
        lines += [_child_line(sub, n, f, sub_default) for n, f in sub.model_fields.items()]
    return "\n".join(lines)


def _child_line(model: type[BaseModel], name: str, field: FieldInfo, parent: Any) -> str:
    default = _default_of(model, name, parent)
    shown = "" if isinstance(default, BaseModel) or default is _NO_DEFAULT else f" = {_show(default)}"
    desc = " ".join((field.description or "").split())
    return f"    {name}: {_type(field.annotation, field.metadata)}{shown}  — {desc}"


def _kind_of(model: type[BaseModel]) -> str:
    kind = model.model_fields.get("kind")
    return f"kind: {kind.default}" if kind is not None and isinstance(kind.default, str) else model.__name__


def _show(value: Any) -> str:
    """A default as it is written in YAML (JSON is YAML): null, true, 0.003, "cosine", {...}."""
    if value is _NO_DEFAULT:
        return "(required)"
    if isinstance(value, BaseModel):  # a section: its fields, listed below, show their defaults
        kind = getattr(value, "kind", None)
        what = f"kind {json.dumps(kind)}" if isinstance(kind, str) else "a section"
        return f"{what}, with the defaults below"
    return json.dumps(to_jsonable_python(value), ensure_ascii=False)


def _type(annotation: Any, metadata: list[Any] = ()) -> str:
    """A type as a reader writes it: ``float > 0``, ``int in [1, 6]``, ``list of Arm (at least 1)``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0], [*metadata, *args[1:]])
    if origin in (typing.Union, types.UnionType):
        text = " | ".join(_type(a) for a in args)
    elif origin is Literal:
        text = " | ".join(json.dumps(a) for a in args)
    elif origin is list:
        text = f"list of {_type(args[0])}"
    elif origin is dict:
        text = f"mapping of {_type(args[0])} to {_type(args[1])}"
    elif annotation is type(None):
        text = "null"
    else:
        text = getattr(annotation, "__name__", str(annotation))
    return text + _bounds(metadata)


def _bounds(metadata: list[Any]) -> str:
    """Numeric bounds and list lengths of ``Field(ge=..)`` / ``Annotated`` constraints, as text."""
    # a Field() inside Annotated (``Annotated[float, Field(gt=0)] | None``) holds its own constraints
    metadata = [c for m in metadata for c in (m.metadata if isinstance(m, FieldInfo) else [m])]
    low = next(((m.ge, "[") for m in metadata if isinstance(m, Ge)), None) or next(
        ((m.gt, "(") for m in metadata if isinstance(m, Gt)), None)
    high = next(((m.le, "]") for m in metadata if isinstance(m, Le)), None) or next(
        ((m.lt, ")") for m in metadata if isinstance(m, Lt)), None)
    text = ""
    if low and high:
        text = f" in {low[1]}{low[0]}, {high[0]}{high[1]}"
    elif low or high:
        sign = {"[": ">=", "(": ">", "]": "<=", ")": "<"}[(low or high)[1]]
        text = f" {sign} {(low or high)[0]}"
    if length := next((m.min_length for m in metadata if isinstance(m, MinLen)), None):
        text += f" (at least {length})"
    return text


def _allowed(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    """Literal choices (naming the registry they come from), a registry's names, or nothing."""
    if registry := _NAMED_BY.get((model, name)):
        return f"{', '.join(registry.names)} (the {registry.what} registry)"
    choices = _literals(field.annotation)
    if not choices:
        return ""
    source = next((r for r in _REGISTRIES if set(r.names) <= set(choices)), None)
    return ", ".join(map(str, choices)) + (f" (names from the {source.what} registry)" if source else "")


def _literals(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    if typing.get_origin(annotation) is dict:  # a mapping's keys are what is chosen
        return _literals(typing.get_args(annotation)[0])
    return [c for arg in typing.get_args(annotation) for c in _literals(arg)]
