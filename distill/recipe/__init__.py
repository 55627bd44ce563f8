"""Recipes: the typed schema and the loader (overrides, one-line errors)."""
from distill.recipe.loading import RecipeError, load_recipe, resolved_yaml, validate_tree
from distill.recipe.schema import Recipe

__all__ = ["Recipe", "RecipeError", "load_recipe", "resolved_yaml", "validate_tree"]
