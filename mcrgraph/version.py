"""The package version, in a module of its own so that modules below the package's facade
(``mcrgraph/__init__.py`` imports the task layer) can stamp it on cards without importing it."""
__version__ = "0.1.0"
