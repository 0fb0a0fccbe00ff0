import importlib.metadata
import sys
from pathlib import Path

import pytest

import mcrgraph
from mcrgraph.spaces import plugins
from conftest import FakeMCR

sys.path.insert(0, str(Path(__file__).parent / "plugin_fixtures"))


def fake_entry_points(monkeypatch, **modules):
    eps = [importlib.metadata.EntryPoint(name=n, value=m, group="mcrgraph") for n, m in modules.items()]
    real = importlib.metadata.entry_points
    monkeypatch.setattr(plugins.importlib.metadata, "entry_points",
                        lambda group=None, **kw: eps if group == "mcrgraph" else real(group=group, **kw))


def test_builtins_are_plugins_like_any_other():
    info = {p.name: p for p in plugins.list_plugins()}
    assert info["synthetic"].source == "built-in" and info["synthetic"].error is None
    assert {m.name for m in mcrgraph.list_mcrs()} >= {"synth-clip", "synth-clap"}


def test_failing_plugins_are_reported_and_others_work(monkeypatch):
    fake_entry_points(monkeypatch, broken="broken_import", half="half_registers")
    info = {p.name: p for p in plugins.list_plugins()}
    assert "import failed: ImportError: this plugin needs a package" in info["broken"].error
    assert "register_mcrs failed: RuntimeError: second model failed" in info["half"].error
    assert mcrgraph.get_mcr("half-ok").name == "half-ok"  # what it registered before failing stays
    assert mcrgraph.get_mcr("synth-clip").dim == 64


def test_allow_list(monkeypatch):
    fake_entry_points(monkeypatch, broken="broken_import", half="half_registers")
    monkeypatch.setenv("MCRGRAPH_LOAD_PLUGINS", "half")
    names = {p.name for p in plugins.list_plugins()}
    assert "half" in names and "broken" not in names
    plugins.reset()
    monkeypatch.setenv("MCRGRAPH_LOAD_PLUGINS", "")
    assert {p.name for p in plugins.list_plugins()} == {"synthetic", "synthetic_eval", "synthetic_hard_eval", "datasets", "recipes"}  # built-ins always load (mini is an entry point)


def test_duplicate_names_from_two_plugins_name_both(monkeypatch):
    fake_entry_points(monkeypatch, dup="dup_synth")
    with pytest.raises(mcrgraph.DuplicateMCRError) as e:
        mcrgraph.get_mcr("synth-clip")
    assert "plugin 'synthetic' (built-in)" in str(e.value) and "plugin 'dup' (entry point" in str(e.value)
    assert mcrgraph.get_mcr("synth-clap").name == "synth-clap"


def test_register_at_run_time_and_unregister():
    m = FakeMCR("rt", ("text",))
    assert mcrgraph.register(m) == ["rt"]
    assert mcrgraph.get_mcr("rt") is m
    with pytest.raises(mcrgraph.DuplicateMCRError, match="two MCRs are named 'rt'"):
        mcrgraph.register(FakeMCR("rt", ("text",)), name="other")
    mcrgraph.unregister("rt")
    with pytest.raises(mcrgraph.UnknownMCRError, match="no space named 'rt'"):
        mcrgraph.get_mcr("rt")


def test_register_a_module_with_hookimpls():
    import types

    mod = types.ModuleType("my_plugin")

    @mcrgraph.hookimpl
    def register_mcrs(register):
        register(FakeMCR("from-module", ("audio", "text")))

    mod.register_mcrs = register_mcrs
    assert mcrgraph.register(mod) == ["from-module"]
    assert [p.source for p in plugins.list_plugins() if p.name == "my_plugin"] == ["run time"]
    mcrgraph.unregister(mod)
    assert "from-module" not in plugins.plugin_mcrs()


@pytest.mark.parametrize("bad,msg", [
    (FakeMCR("has space", ("text",)), "bad MCR name"),
    (FakeMCR("ok", ("Text",)), "bad modalities"),
    (FakeMCR("ok", ()), "bad modalities"),
    (FakeMCR, "register an instance"),
    ("not an mcr", "not an mcrgraph.MCR"),
])
def test_register_rejects_bad_mcrs(bad, msg):
    with pytest.raises(mcrgraph.MCRGraphError, match=msg):
        mcrgraph.register(bad, name="x")


def test_register_module_that_raises_leaves_nothing_behind():
    import types

    mod = types.ModuleType("raiser")

    @mcrgraph.hookimpl
    def register_mcrs(register):
        register(FakeMCR("first", ("text",)))
        raise RuntimeError("no weights")

    mod.register_mcrs = register_mcrs
    with pytest.raises(mcrgraph.MCRGraphError, match="plugin 'raiser': register_mcrs raised RuntimeError: no weights"):
        mcrgraph.register(mod)
    assert "raiser" not in {p.name for p in plugins.list_plugins()} and "first" not in plugins.plugin_mcrs()

    def twice(register):
        register(FakeMCR("same", ("text",)))
        register(FakeMCR("same", ("text",)))

    mod.register_mcrs = mcrgraph.hookimpl(twice)
    with pytest.raises(mcrgraph.DuplicateMCRError, match="registers two MCRs named 'same'"):
        mcrgraph.register(mod)


def test_pinned_modality_reaches_plugin_unpinned():
    assert mcrgraph.embed(mcrgraph.get_mcr("synth-clip"), "text@synth-clip", ["c1"]).shape == (1, 64)
