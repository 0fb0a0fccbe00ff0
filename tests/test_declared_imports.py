"""Every module imports only what its distribution declares (issue 18): a package that is present
only because another one pulls it in (huggingface_hub through transformers, librosa through
laion_clap) breaks the day that other package drops it, or for a user who installs less.

Static: every ``import`` of every module of each distribution (core ``mcrgraph``, and
``plugins/*``), and of the tests, is parsed; its top-level name must be the standard library's,
one of the distribution's own packages, or provided (``importlib.metadata.packages_distributions``)
by a distribution that its pyproject declares (dependencies or an extra). A venv per
distribution built from its declarations alone would be the dynamic version of this check; it
would reinstall torch (5.5 GB) per distribution, so the suite does it statically."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str:
    return normalise(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1))


def distribution(folder: Path) -> dict:
    """name, declared distributions (dependencies and every extra), own packages, source files."""
    meta = tomllib.loads((folder / "pyproject.toml").read_text())
    project = meta["project"]
    declared = {requirement_name(r) for r in project.get("dependencies", [])}
    for reqs in project.get("optional-dependencies", {}).values():
        declared |= {requirement_name(r) for r in reqs}
    include = meta.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("include", [])
    packages = sorted({p.rstrip("*").rstrip(".") for p in include})
    files = [f for p in packages for f in sorted((folder / p).rglob("*.py"))]
    return {"name": normalise(project["name"]), "declared": declared, "packages": set(packages), "files": files,
            "extras": project.get("optional-dependencies", {})}


def distributions() -> dict[str, dict]:
    found = [distribution(ROOT)] + [distribution(p) for p in sorted(PLUGINS.iterdir()) if (p / "pyproject.toml").is_file()]
    return {d["name"]: d for d in found}


OPTIONAL = {"ImportError", "ModuleNotFoundError"}
# import names that packages_distributions() cannot see: laion_clap puts its clap_module folder
# on sys.path at import
ALIASES = {"clap_module": ["laion_clap"]}


def _guarded(node: ast.Try) -> bool:
    names = set()
    for h in node.handlers:
        for t in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]) if h.type else []:
            names.add(getattr(t, "id", None))
    return bool(names & OPTIONAL)


def imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, top-level name) of every absolute import in the file, wherever it sits, except
    those in the body of a ``try`` that catches ImportError: optional by construction."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    optional = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try) and _guarded(t)
                for stmt in t.body for n in ast.walk(stmt)}
    out = []
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return sorted(out)


def undeclared(files, declared: set[str], own: set[str], providers: dict[str, list[str]]) -> list[str]:
    """``file:line name (provided by ...)`` for each import that nothing declared provides."""
    bad = []
    for f in files:
        for line, name in imported_names(f):
            if name in sys.stdlib_module_names or name in own or name == "__future__":
                continue
            dists = {normalise(d) for d in providers.get(name, [])}
            if not dists & declared:
                where = f"provided by {', '.join(sorted(dists))}" if dists else "installed by nothing"
                bad.append(f"{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}:{line} {name} ({where})")
    return bad


@pytest.fixture(scope="module")
def dists():
    return distributions()


@pytest.fixture(scope="module")
def providers(dists):
    """import name -> distributions, from what is installed, plus the repository's own packages
    (an editable install does not always list them)."""
    out = {k: list(v) for k, v in packages_distributions().items()} | ALIASES
    for d in dists.values():
        for p in d["packages"]:
            out.setdefault(p, []).append(d["name"])
    return out


def test_the_distributions_are_found(dists):
    assert {"mcrgraph", "mcrgraph-clip", "mcrgraph-clap", "mcrgraph-ulip", "mcrgraph-mini"} <= set(dists)
    for d in dists.values():
        assert d["files"], f"{d['name']}: no module found"


@pytest.mark.parametrize("name", ["mcrgraph", "mcrgraph-clip", "mcrgraph-clap", "mcrgraph-ulip", "mcrgraph-mini"])
def test_each_distribution_imports_only_what_it_declares(dists, providers, name):
    d = dists[name]
    bad = undeclared(d["files"], d["declared"] | {d["name"]}, d["packages"], providers)
    assert not bad, f"{name} imports what its pyproject.toml does not declare:\n" + "\n".join(bad)


def test_the_tests_import_only_what_the_test_install_declares(dists, providers):
    """The tests run in what `make test` installs: every distribution of the repository with its
    dependencies and extras (the core's ``test`` extra among them)."""
    declared = set(dists) | {r for d in dists.values() for r in d["declared"]}
    own = {p for d in dists.values() for p in d["packages"]} | {"conftest", "plugin_fixtures"}
    own |= {p.stem for p in (ROOT / "tests").rglob("*.py")} | {p.name for p in (ROOT / "tests").rglob("*") if p.is_dir()}
    bad = undeclared(sorted((ROOT / "tests").rglob("*.py")), declared, own, providers)
    assert not bad, "the tests import what no pyproject.toml declares:\n" + "\n".join(bad)
    test_extra = {requirement_name(r) for r in dists["mcrgraph"]["extras"]["test"]}
    assert "librosa" in test_extra  # test_clap_plugin checks the log-mel against it


def test_the_check_catches_an_undeclared_import(tmp_path, providers):
    """The checker itself: an import of an installed but undeclared package, and of one that
    nothing installs, are both reported, inside functions too; stdlib, own, relative imports and
    those guarded by ``except ImportError`` are not."""
    module = tmp_path / "mod.py"
    module.write_text("import os\nimport json as j\nfrom . import sibling\nimport mine.sub\n"
                      "def f():\n    import numpy\n    from huggingface_hub import hf_hub_download\n"
                      "    import not_a_package_anywhere\n"
                      "try:\n    import faiss_or_not\nexcept (ValueError, ImportError):\n    pass\n"
                      "try:\n    import unguarded_thing\nexcept OSError:\n    pass\n")
    bad = undeclared([module], {"numpy"}, {"mine"}, providers)
    assert [b.split(" ", 1)[1] for b in bad] == ["huggingface_hub (provided by huggingface-hub)",
                                                  "not_a_package_anywhere (installed by nothing)",
                                                  "unguarded_thing (installed by nothing)"]
    assert [b.split(" ")[0].rsplit(":", 1)[1] for b in bad] == ["7", "8", "14"]
    assert undeclared([module], {"numpy", "huggingface-hub"}, {"mine", "not_a_package_anywhere", "unguarded_thing"}, providers) == []
