"""Old module paths (before issue 26's folders) import for one release, warn, and are the same
module objects as the new paths; the package's public functions are not shadowed by them."""
import importlib
import sys

import pytest

import mcrgraph
from mcrgraph.compat import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_warns_and_is_the_new_module(old):
    sys.modules.pop(f"mcrgraph.{old}", None)
    with pytest.warns(DeprecationWarning, match=f"mcrgraph.{old} moved to mcrgraph.{MOVED[old]}"):
        module = importlib.import_module(f"mcrgraph.{old}")
    assert module is importlib.import_module(f"mcrgraph.{MOVED[old]}")


def test_what_plugins_md_promised_still_imports():
    sys.modules.pop("mcrgraph.weights", None)
    with pytest.warns(DeprecationWarning, match="import from mcrgraph.plugin"):
        from mcrgraph.weights import load_exact  # noqa: F401  (docs/plugins.md before issue 26)
    from mcrgraph.plugin import load_exact as new

    assert load_exact is new


def test_public_functions_are_not_shadowed():
    assert callable(mcrgraph.graph) and callable(mcrgraph.localize) and callable(mcrgraph.connect)
    assert "graph" not in MOVED and "localize" not in MOVED
