"""Where shipped recipes live: the checkout's `recipes/`, or `<prefix>/share/pose_tl/recipes` after a wheel install."""

import sys
from pathlib import Path

from pose_tl.errors import RecipeError

CHECKOUT_RECIPES = Path(__file__).resolve().parent.parent / "recipes"
INSTALLED_RECIPES = Path(sys.prefix) / "share" / "pose_tl" / "recipes"


def recipes_dir():
    return CHECKOUT_RECIPES if CHECKOUT_RECIPES.is_dir() else INSTALLED_RECIPES


def shipped_recipes():
    folder = recipes_dir()
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def find_recipe(name):
    """A shipped recipe by name (`classify_vgg16_depth`), or any existing recipe path."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in shipped_recipes():
        if candidate.stem == name:
            return candidate
    raise RecipeError(name, "", f"no such recipe file or shipped recipe; shipped: "
                      f"{[p.stem for p in shipped_recipes()]}", has_received=False)
