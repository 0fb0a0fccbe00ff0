"""Plugin loading (pluggy) and the registry of MCRs they provide.

Built-in plugins are ordinary plugins listed in DEFAULT_PLUGINS; external ones come from the
``mcrgraph`` entry-point group, filtered by ``MCRGRAPH_LOAD_PLUGINS`` (comma-separated names;
set but empty loads none). A plugin that fails to import or register is recorded, with the
reason, and the others go on."""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import traceback
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from ..errors import DuplicateMCRError, MCRGraphError, UnknownMCRError
from .mcr import MCR, MODALITY_RE, NAME_RE

DEFAULT_PLUGINS = (
    "mcrgraph.default_plugins.synthetic",
    "mcrgraph.default_plugins.synthetic_eval",
    "mcrgraph.default_plugins.synthetic_hard_eval",
    "mcrgraph.default_plugins.datasets",
    "mcrgraph.default_plugins.recipes",
)
ENTRY_POINT_GROUP = "mcrgraph"


@dataclass
class PluginInfo:
    name: str
    source: str  # "built-in", "entry point <dist>", "run time"
    mcrs: list[str] = field(default_factory=list)
    error: str | None = None
    detail: str | None = None  # the traceback of ``error``, for --debug


@dataclass
class _State:
    pm: pluggy.PluginManager
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    mcrs: dict[str, MCR] = field(default_factory=dict)
    mcr_source: dict[str, str] = field(default_factory=dict)
    conflicts: dict[str, list[str]] = field(default_factory=dict)


_state: _State | None = None


def _new_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("mcrgraph")
    pm.add_hookspecs(hookspecs)
    return pm


def state() -> _State:
    """The loaded plugin state; plugins load on first use."""
    global _state
    if _state is None:
        _state = _State(pm=_new_pm())
        _load_all(_state)
    return _state


def reset() -> None:
    """Forget all loaded plugins; the next call loads them again (for tests)."""
    global _state
    _state = None


def _allowed(name: str) -> bool:
    allow = os.environ.get("MCRGRAPH_LOAD_PLUGINS")
    if allow is None:
        return True
    return name in {n.strip() for n in allow.split(",") if n.strip()}


def _load_all(st: _State) -> None:
    for module_name in DEFAULT_PLUGINS:
        _add_plugin(st, module_name.rsplit(".", 1)[-1], "built-in", lambda m=module_name: importlib.import_module(m))
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if _allowed(ep.name):
            dist = getattr(ep.dist, "name", None) or "?"
            _add_plugin(st, ep.name, f"entry point ({dist})", ep.load)


def _failure(info: PluginInfo, stage: str, exc: BaseException) -> None:
    info.error = f"{stage}: {type(exc).__name__}: {exc}"
    info.detail = "".join(traceback.format_exception(exc))


def _add_plugin(st: _State, name: str, source: str, load) -> PluginInfo:
    info = PluginInfo(name=name, source=source)
    st.plugins[name] = info
    try:
        plugin = load()
        st.pm.register(plugin, name=name)
    except Exception as e:
        _failure(info, "import failed", e)
        return info
    _register_mcrs_of(st, info, plugin)
    return info


def _register_mcrs_of(st: _State, info: PluginInfo, plugin: Any) -> None:
    hook = getattr(plugin, "register_mcrs", None)
    if hook is None:
        return

    def register(mcr: MCR) -> None:
        _add_mcr(st, mcr, info)

    try:
        hook(register=register)
    except Exception as e:  # keep what it registered before failing
        _failure(info, "register_mcrs failed", e)


def validate_mcr(mcr: Any, source: str) -> MCR:
    if isinstance(mcr, type) and issubclass(mcr, MCR):
        raise MCRGraphError(f"{source} registered the class {mcr.__name__}; register an instance: {mcr.__name__}()")
    if not isinstance(mcr, MCR):
        raise MCRGraphError(f"{source} registered {type(mcr).__name__}, which is not an mcrgraph.MCR")
    if not isinstance(mcr.name, str) or not NAME_RE.match(mcr.name):
        raise MCRGraphError(f"{source}: bad MCR name {mcr.name!r} (letters, digits and . _ + - only)")
    mods = tuple(mcr.modalities)
    if not mods or any(not isinstance(m, str) or not MODALITY_RE.match(m) for m in mods) or len(set(mods)) != len(mods):
        raise MCRGraphError(f"{source}: MCR {mcr.name!r} has bad modalities {mods!r} (distinct lower-case names)")
    if not isinstance(mcr.dim, int) or mcr.dim <= 0:
        raise MCRGraphError(f"{source}: MCR {mcr.name!r} has bad dim {mcr.dim!r}")
    return mcr


def _add_mcr(st: _State, mcr: Any, info: PluginInfo) -> None:
    source = f"plugin {info.name!r} ({info.source})"
    mcr = validate_mcr(mcr, source)
    if mcr.name in st.mcrs or mcr.name in st.conflicts:
        # neither wins: which one a user gets must not depend on load order
        st.conflicts.setdefault(mcr.name, [st.mcr_source[mcr.name]]).append(source)
        st.mcrs.pop(mcr.name, None)
    else:
        st.mcrs[mcr.name] = mcr
        st.mcr_source[mcr.name] = source
    info.mcrs.append(mcr.name)


def register(obj: Any, name: str | None = None) -> list[str]:
    """Register a plugin at run time: an MCR instance, or a module/object with hookimpls.
    Returns the names of the MCRs it added. A name already taken raises DuplicateMCRError."""
    st = state()
    name = name or getattr(obj, "__name__", None) or (obj.name if isinstance(obj, MCR) else type(obj).__name__)
    if name in st.plugins:
        raise DuplicateMCRError(f"a plugin named {name!r} is already registered ({st.plugins[name].source})")
    if isinstance(obj, (MCR, type)):
        mcr = validate_mcr(obj, "mcrgraph.register()")
        _check_free(st, mcr.name, "run time")
        info = PluginInfo(name=name, source="run time")
        st.plugins[name] = info
        _add_mcr(st, mcr, info)
        return info.mcrs
    if not any(hasattr(getattr(obj, attr, None), "mcrgraph_impl") for attr in dir(obj)):
        raise MCRGraphError(f"{obj!r} is not an mcrgraph.MCR, nor a plugin (it has no @mcrgraph.hookimpl functions)")
    st.pm.register(obj, name=name)
    info = PluginInfo(name=name, source="run time")
    st.plugins[name] = info
    names: list[MCR] = []
    hook = getattr(obj, "register_mcrs", None)
    try:
        if hook is not None:
            try:
                hook(register=names.append)
            except Exception as e:
                raise MCRGraphError(f"plugin {name!r}: register_mcrs raised {type(e).__name__}: {e}") from e
        seen: set[str] = set()
        for mcr in names:
            mcr = validate_mcr(mcr, f"plugin {name!r}")
            _check_free(st, mcr.name, "run time")
            if mcr.name in seen:
                raise DuplicateMCRError(f"plugin {name!r} registers two MCRs named {mcr.name!r}")
            seen.add(mcr.name)
        for mcr in names:
            _add_mcr(st, mcr, info)
    except MCRGraphError:
        unregister(name)
        raise
    return info.mcrs


def _check_free(st: _State, mcr_name: str, source: str) -> None:
    if mcr_name in st.mcrs:
        raise DuplicateMCRError(
            f"two MCRs are named {mcr_name!r}: one from {st.mcr_source[mcr_name]}, one from {source}; rename one"
        )


def unregister(name_or_obj: Any) -> None:
    """Remove a plugin registered at run time, with its MCRs."""
    st = state()
    name = name_or_obj if isinstance(name_or_obj, str) else next(
        (n for n, p in st.plugins.items() if p.name == getattr(name_or_obj, "__name__", getattr(name_or_obj, "name", None))), None
    )
    info = st.plugins.pop(name, None) if name else None
    if info is None:
        raise UnknownMCRError(f"no plugin named {name_or_obj!r} is registered")
    for mcr_name in info.mcrs:
        if st.mcr_source.get(mcr_name, "").startswith(f"plugin {info.name!r}"):
            st.mcrs.pop(mcr_name, None)
            st.mcr_source.pop(mcr_name, None)
    if st.pm.has_plugin(name):
        st.pm.unregister(name=name)


def plugin_mcrs() -> dict[str, MCR]:
    return dict(state().mcrs)


def get_plugin_mcr(name: str) -> MCR | None:
    st = state()
    if name in st.conflicts:
        raise DuplicateMCRError(f"two MCRs are named {name!r}: from {' and from '.join(st.conflicts[name])}; uninstall or rename one")
    return st.mcrs.get(name)


def list_plugins() -> list[PluginInfo]:
    return list(state().plugins.values())


def hook():
    return state().pm.hook
