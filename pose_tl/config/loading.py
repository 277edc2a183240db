"""Load a recipe: YAML (safe) -> `base:` inheritance -> `--set` overrides -> typed, validated `Recipe`.

Strict by design (as Model Garden's params and nanoGPT's config): unknown keys, wrong types and out-of-range values
are errors naming the file and the dotted field path, never silently ignored.
"""

import collections.abc
import dataclasses
import difflib
import os
import re
import types
import typing
from pathlib import Path

import yaml

from pose_tl.config.schema import WEIGHT_KEYWORDS, Recipe
from pose_tl.config.validation import check_recipe, is_existing
from pose_tl.errors import RecipeError

OVERRIDES_SOURCE = "--set"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:  # keys written in this mapping; `<<: *anchor` merges may be overridden
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, collections.abc.Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a scalar, found {type(key).__name__}", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)  # flattens merge keys, as safe_load does


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.2 floats: PyYAML (YAML 1.1) reads `1e-4` (no dot) as a string; learning rates are written that way.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


# PyYAML reports bad scalars (`!!int twelve`, `2001-13-45`, a 5000-digit int) and deep nesting with Python
# exceptions, not only YAMLError.
YAML_FAILURES = (yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError)


def _parse_yaml(text, source, field, is_override=False):
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except YAML_FAILURES as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = (getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0])[:200]
        if is_override:
            raise RecipeError(source, field, f"expected a YAML value ({problem})", text) from None
        raise RecipeError(source, field, f"malformed YAML{where}: {problem}", has_received=False) from None


def read_yaml_mapping(path):
    """Read one YAML file into a dict; every failure is a RecipeError naming the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecipeError(path, "", "recipe file not found", has_received=False) from None
    except IsADirectoryError:
        raise RecipeError(path, "", "expected a recipe file, found a directory", has_received=False) from None
    except OSError as exc:
        raise RecipeError(path, "", f"cannot read recipe ({exc.strerror})", has_received=False) from None
    if b"\x00" in raw:
        raise RecipeError(path, "", "expected a YAML text file, found binary data", has_received=False)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(path, "", f"expected UTF-8 text, found an invalid byte at offset {exc.start}",
                          has_received=False) from None
    data = _parse_yaml(text, path, "")
    if data is None:
        raise RecipeError(path, "", "the recipe is empty; expected a mapping such as `task: classification`",
                          has_received=False)
    if not isinstance(data, dict):
        raise RecipeError(path, "", "expected a mapping of recipe sections at the top level",
                          type(data).__name__)
    return data


def deep_merge(base, override):
    """Mappings merge key by key; any other value (lists included) is replaced whole."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _path_fields(cls=Recipe, prefix=""):
    """Dotted paths of every field that holds a filesystem path."""
    found = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        dotted = f"{prefix}{f.name}"
        if f.metadata.get("path"):
            found.append(dotted)
        sub = _dataclass_in(hints[f.name])
        if sub is not None:
            found += _path_fields(sub, dotted + ".")
    return found


def _resolve_paths(data, base_dir, source):
    """Make relative paths set in one file relative to that file's folder."""
    def resolve(value, dotted):
        if not isinstance(value, str):
            return value  # the type check reports it
        if not value or "\x00" in value:
            raise RecipeError(source, dotted, "expected a non-empty path without NUL characters", value)
        value = os.path.expanduser(value)
        return value if os.path.isabs(value) else str((Path(base_dir) / value).resolve())

    for dotted in _path_fields() + ["model.backbone.weights"]:
        *parents, leaf = dotted.split(".")
        node = data
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        if dotted == "model.backbone.weights" and (not isinstance(node[leaf], str) or node[leaf] in WEIGHT_KEYWORDS):
            continue
        node[leaf] = resolve(node[leaf], dotted)
    return data


def _load_with_bases(path, chain):
    path = Path(path).resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in [*chain, path])
        raise RecipeError(chain[-1], "base", f"`base` files form a cycle: {cycle}", has_received=False)
    data = read_yaml_mapping(path)
    base = data.pop("base", None)
    data = _resolve_paths(data, path.parent, path)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise RecipeError(path, "base", "expected the path of another recipe file", base)
    base_path = path.parent / base
    if not is_existing(base_path, "file"):
        raise RecipeError(path, "base", f"base recipe not found at {base_path}", base)
    return deep_merge(_load_with_bases(base_path, [*chain, path]), data)


def parse_override(text, source=OVERRIDES_SOURCE):
    """`a.b.c=value` -> nested dict; the value is parsed as YAML (so `3`, `1e-4`, `[64, 64]`, `null` work)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise RecipeError(source, key or text, "expected KEY.PATH=VALUE, e.g. train.phases=[{epochs: 1}]", text)
    parsed = _parse_yaml(value, source, key, is_override=True) if value.strip() else None
    nested = parsed
    for part in reversed(key.split(".")):
        nested = {part: nested}
    return nested


def load_recipe_dict(path, overrides=()):
    """The merged raw mapping of a recipe, its bases and overrides (paths resolved, nothing validated)."""
    data = _load_with_bases(path, [])
    for text in overrides:
        data = deep_merge(data, _resolve_paths(parse_override(text), Path.cwd(), f"{path} (--set {text})"))
    return data


def load_recipe(path, overrides=()):
    """Load, merge and validate a recipe file into a frozen `Recipe`.

    Args:
        path: the recipe YAML file.
        overrides: `a.b=value` strings applied after `base:` inheritance, in order.

    Raises:
        RecipeError: naming the file, the dotted field and what was expected.
    """
    source = str(path)
    data = load_recipe_dict(path, overrides)
    recipe = convert(data, Recipe, "", source)
    recipe = dataclasses.replace(recipe, source=source)
    check_recipe(recipe)
    return recipe


def recipe_to_dict(recipe):
    """The resolved recipe as plain YAML-able data (what is written next to every run)."""
    def plain(value):
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                    if not f.metadata.get("internal")}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(recipe)


# --- conversion of plain data into the typed dataclasses -------------------------------------------------------

def _dataclass_in(tp):
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _type_name(tp):
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args) + " or null"
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is tuple:
        args = typing.get_args(tp)
        return f"a list of {len(args)} {_type_name(args[0])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _check_range(value, meta, source, path):
    low, high = meta.get("min"), meta.get("max")
    if low is not None and (value < low or (meta.get("min_exclusive") and value == low)):
        word = ">" if meta.get("min_exclusive") else ">="
        raise RecipeError(source, path, f"expected a value {word} {low}", value)
    if high is not None and value > high:
        raise RecipeError(source, path, f"expected a value <= {high}", value)


def convert(value, tp, path, source, meta=None):
    """Convert plain YAML data to type `tp`, raising RecipeError at the first mismatch."""
    meta = meta or {}
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return convert(value, inner, path, source, meta)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RecipeError(source, path, f"expected one of {list(choices)}{hint}", value)
        return value
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(value, tp, path, source)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(source, path, f"expected {_type_name(tp)}", value)
        args = typing.get_args(tp)
        if origin is tuple:
            if len(value) != len(args):
                raise RecipeError(source, path, f"expected {_type_name(tp)}", value)
            return tuple(convert(v, a, f"{path}[{i}]", source, meta) for i, (v, a) in enumerate(zip(value, args)))
        return [convert(v, args[0], f"{path}[{i}]", source, meta) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise RecipeError(source, path, "expected true or false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(source, path, "expected an integer", value)
        _check_range(value, meta, source, path)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(source, path, "expected a number", value)
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise RecipeError(source, path, "expected a finite number", value)
        _check_range(value, meta, source, path)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise RecipeError(source, path, "expected a string", value)
        if meta.get("must_exist") and not is_existing(value):
            raise RecipeError(source, path, "expected an existing path", value)
        return value
    raise TypeError(f"unsupported recipe type {tp!r} at {path}")  # a schema bug, not a user error


def _convert_dataclass(value, cls, path, source):
    if not isinstance(value, dict):
        raise RecipeError(source, path or "<top level>", "expected a mapping", value)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs = {}
    for key, item in value.items():
        dotted = f"{path}.{key}" if path else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; valid keys: {sorted(fields)}"
            raise RecipeError(source, dotted, f"unknown key{hint}", has_received=False)
        kwargs[key] = convert(item, hints[key], dotted, source, dict(fields[key].metadata))
    return cls(**kwargs)
