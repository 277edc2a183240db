"""Recipes: YAML files turned once into frozen, typed, validated config objects."""

from pose_tl.config.loading import load_recipe, recipe_to_dict
from pose_tl.config.schema import Recipe

__all__ = ["Recipe", "load_recipe", "recipe_to_dict"]
