"""The README documents every recipe field and every command."""

import dataclasses
import re
import typing

import pytest
from conftest import REPO

from pose_tl.config.schema import Recipe

README = (REPO / "README.md").read_text()


def leaf_fields(cls=Recipe, prefix=""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        nested = [t for t in (hints[f.name], *typing.get_args(hints[f.name])) if dataclasses.is_dataclass(t)]
        is_list = typing.get_origin(hints[f.name]) is list
        if nested:
            yield from leaf_fields(nested[0], f"{prefix}{f.name}{'[]' if is_list else ''}.")
        else:
            yield prefix + f.name


@pytest.mark.parametrize("field", list(leaf_fields()))
def test_every_recipe_field_is_documented(field):
    assert f"`{field}`" in README


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "export", "inspect", "recipes list"])
def test_every_command_is_documented(command):
    assert re.search(rf"`pose-tl {command}\b", README)


def test_two_commands():
    assert "make demo" in README and "make test" in README
