"""The package's layers (docs/architecture.md, "Layers"): each module imports only modules of
its own layer or the layers below it, imports inside functions included (they are the same
dependency, deferred), and no module reaches for another module's private names."""
import ast
import pathlib

import pytest

import mcrgraph

ROOT = pathlib.Path(mcrgraph.__file__).parent

# lowest first; a module not listed here fails the test, so every new module takes a side.
# index sits in core (it needs only base modules) so that methods.readout can search keys through it.
LAYERS = {
    "base": ["errors", "mcr", "hookspecs", "version", "files", "progress", "fingerprint", "card", "store", "lineage",
             "metrics", "topk", "weights", "safeload", "items", "media", "pointcloud",
             "download"],
    "core": ["plugins", "registry", "connectors", "connected", "encoding", "cache", "checkpoints", "methods", "connect",
             "graph", "planner", "official", "pretrained", "encoder_weights",
             "recipes", "corpora", "index", "methods.readout",
             "fidelity"],
    "tasks": ["tasks", "localize", "datasets", "distributed"],
    "interface": ["mcrgraph", "cli", "cli_common", "cli_tasks", "__main__", "drawing", "graph_picture", "default_plugins", "datasets.commands"],
}
RANK = {m: i for i, mods in enumerate(LAYERS.values()) for m in mods}


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        rel = f.relative_to(ROOT.parent).with_suffix("")
        out[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = f
    return out


MODULES = modules()


def layer_of(module: str) -> str:
    """The most specific entry of LAYERS that holds ``module``: ``mcrgraph.methods.cmcr`` ->
    ``methods``, ``mcrgraph.datasets.commands`` -> ``datasets.commands``; the package -> ``mcrgraph``."""
    parts = module.split(".")[1:]
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANK:
            return ".".join(parts[:n])
    return parts[0] if parts else module


def imports(module: str, tree: ast.AST) -> list[tuple[str, list[str], int]]:
    """(imported package module, names taken from it, line) for every import in ``tree``."""
    out = []
    is_pkg = MODULES[module].name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for alias in node.names:
                sub = f"{stem}.{alias.name}"
                if sub in MODULES:
                    out.append((sub, [], node.lineno))
                elif stem in MODULES:
                    out.append((stem, [alias.name], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name in MODULES]
    return out


def test_every_module_has_a_layer():
    assert sorted(m for m in MODULES if layer_of(m) not in RANK) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module):
    mine = RANK[layer_of(module)]
    tree = ast.parse(MODULES[module].read_text())
    up = [f"line {line}: {target} ({layer_of(target)})" for target, _, line in imports(module, tree)
          if RANK[layer_of(target)] > mine and not module.startswith(target + ".")]
    assert up == [], f"{module} imports from a higher layer"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_of_other_modules(module):
    tree = ast.parse(MODULES[module].read_text())
    taken = [f"line {line}: {name} from {target}" for target, names, line in imports(module, tree)
             for name in names if target != module and name.startswith("_") and not name.startswith("__")]
    aliases = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level
               for a in node.names if f"{'.'.join(module.split('.')[:-1])}.{a.name}" in MODULES or f"mcrgraph.{a.name}" in MODULES}
    reached = [f"line {n.lineno}: {n.value.id}.{n.attr}" for n in ast.walk(tree)
               if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in aliases
               and n.attr.startswith("_") and not n.attr.startswith("__")]
    assert taken + reached == []


def test_the_layer_test_sees_a_violation():
    """The checks above can fail: a core module importing the task layer is found."""
    tree = ast.parse("def f():\n    from .tasks import classify\n")
    found = [t for t, _, _ in imports("mcrgraph.graph", tree)]
    assert found == ["mcrgraph.tasks"] and RANK[layer_of(found[0])] > RANK["graph"]
