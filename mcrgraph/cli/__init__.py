"""The ``mcrgraph`` command line, a thin layer over the library: the group and its core commands
(main), shared helpers (common), the query commands (queries), dataset evals, drawings.
May import: everything. ``from mcrgraph.cli import cli, result_table, seed_list`` is public (plugins' commands)."""
from __future__ import annotations

from .main import cli, main, result_table, seed_list

__all__ = ["cli", "main", "result_table", "seed_list"]
