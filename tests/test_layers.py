"""The package's layers are its folders (docs/architecture.md, "Layers"). Each folder (or root
module) is a room on a floor; a module imports only from its own room or rooms on lower floors
(imports inside functions included: they are the same dependency, deferred); the top floor is the
interface and may use anything. No module reaches for another module's private names, and the
real-encoder plugins import only ``mcrgraph`` and ``mcrgraph.plugin``."""
import ast
import pathlib

import pytest

import mcrgraph

ROOT = pathlib.Path(mcrgraph.__file__).parent
REPO = ROOT.parent

# lowest first; a room not listed here fails the test, so every new folder takes a floor.
FLOORS = [
    ["errors", "version", "names"],
    ["io"],
    ["store", "ranking"],
    ["methods"],
    ["spaces"],
    ["fetch"],
    ["connect", "adapt"],
    ["planning"],
    ["tasks"],
    ["datasets"],
    ["cli", "serve", "default_plugins", "plugin", "compat", "__main__", "mcrgraph"],
]
FLOOR = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}
TOP = len(FLOORS) - 1


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        rel = f.relative_to(ROOT.parent).with_suffix("")
        out[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = f
    return out


MODULES = modules()


def room_of(module: str) -> str:
    """``mcrgraph.spaces.mcr`` -> ``spaces``; ``mcrgraph.connect`` -> ``connect``; the package -> ``mcrgraph``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports(module: str, tree: ast.AST, known=MODULES) -> list[tuple[str, list[str], int]]:
    """(imported package module, names taken from it, line) for every import in ``tree``."""
    out = []
    is_pkg = module in known and known[module].name == "__init__.py"
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
                if sub in known:
                    out.append((sub, [], node.lineno))
                elif stem in known:
                    out.append((stem, [alias.name], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name in known]
    return out


def allowed(importer: str, target: str) -> bool:
    mine, theirs = room_of(importer), room_of(target)
    return mine == theirs or FLOOR[mine] == TOP or FLOOR[theirs] < FLOOR[mine]


def test_every_room_has_a_floor():
    assert sorted({room_of(m) for m in MODULES} - set(FLOOR)) == []


def test_every_folder_says_what_it_holds_and_may_import():
    for room in FLOOR:
        init = ROOT / room / "__init__.py"
        if init.exists():
            doc = ast.get_docstring(ast.parse(init.read_text())) or ""
            assert "May import" in doc, f"{init} docstring: say what it holds and what it may import"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_floors(module):
    tree = ast.parse(MODULES[module].read_text())
    up = [f"line {line}: {target} ({room_of(target)})" for target, _, line in imports(module, tree)
          if not allowed(module, target)]
    assert up == [], f"{module} ({room_of(module)}) imports from a room on its floor or above"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_of_other_modules(module):
    tree = ast.parse(MODULES[module].read_text())
    taken = [f"line {line}: {name} from {target}" for target, names, line in imports(module, tree)
             for name in names if target != module and name.startswith("_") and not name.startswith("__")]
    package = module.split(".")[:-1] if MODULES[module].name != "__init__.py" else module.split(".")
    aliases = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level
               for a in node.names if ".".join(package + [a.name]) in MODULES}
    reached = [f"line {n.lineno}: {n.value.id}.{n.attr}" for n in ast.walk(tree)
               if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in aliases
               and n.attr.startswith("_") and not n.attr.startswith("__")]
    assert taken + reached == []


def test_the_layer_test_sees_a_violation():
    """The checks can fail: methods (floor 3) reaching into spaces (floor 4) is found, and so is a
    room importing a neighbour on its own floor (store and ranking)."""
    tree = ast.parse("def f():\n    from ..spaces.mcr import MCR\n    from ..ranking import topk\n")
    found = [t for t, _, _ in imports("mcrgraph.methods.cmcr", tree)]
    assert found == ["mcrgraph.spaces.mcr", "mcrgraph.ranking.topk"]
    assert [allowed("mcrgraph.methods.cmcr", t) for t in found] == [False, True]
    assert not allowed("mcrgraph.store.card", "mcrgraph.ranking.topk")


# the real-encoder plugins: the shape of a third party's plugin, so they use the plugin module only
PLUGIN_DIRS = ["plugins/mcrgraph-clip", "plugins/mcrgraph-clap", "plugins/mcrgraph-ulip", "examples/plugin-example"]
PLUGIN_API = {"mcrgraph", "mcrgraph.plugin"}


def plugin_files():
    return sorted(f for d in PLUGIN_DIRS for f in (REPO / d).rglob("*.py"))


def mcrgraph_uses(tree: ast.AST) -> list[str]:
    """Every mcrgraph module a file imports, and every ``mcrgraph.X`` it reaches through the package."""
    used = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "mcrgraph":
            used.append(node.module)
            if node.module == "mcrgraph":
                used += [f"mcrgraph.{a.name}" for a in node.names if f"mcrgraph.{a.name}" in MODULES]
        elif isinstance(node, ast.Import):
            used += [a.name for a in node.names if a.name.split(".")[0] == "mcrgraph"]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "mcrgraph":
            if node.attr not in mcrgraph.__all__ and node.attr != "__version__":
                used.append(f"mcrgraph.{node.attr}")
    return used


@pytest.mark.parametrize("path", plugin_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_plugins_use_only_the_plugin_module(path):
    inner = [u for u in mcrgraph_uses(ast.parse(path.read_text())) if u not in PLUGIN_API]
    assert inner == [], f"{path.relative_to(REPO)} reaches into mcrgraph's internals; add what it needs to mcrgraph.plugin"


def test_the_plugin_check_sees_an_internal_import():
    tree = ast.parse("import mcrgraph\nfrom mcrgraph.store.weights import load_exact\nx = mcrgraph.spaces\n"
                     "from mcrgraph.plugin import MCR\ny = mcrgraph.hookimpl\n")
    assert [u for u in mcrgraph_uses(tree) if u not in PLUGIN_API] == ["mcrgraph.store.weights", "mcrgraph.spaces"]


def test_plugin_module_names_exist():
    import mcrgraph.plugin as plugin

    assert all(hasattr(plugin, name) for name in plugin.__all__)
