"""muslcheck's version: written here once (pyproject.toml reads it), at the bottom of the house so any stage may
name it without importing the package face."""

__version__ = "0.1.0"
