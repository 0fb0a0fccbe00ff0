"""Look up spaces by name: plugin MCRs first, then connectors in the store."""
from __future__ import annotations

from . import connected, plugins
from ..store import connectors
from .connected import ConnectedMCR
from ..errors import ConfigError, UnknownMCRError
from .mcr import MCR, NAME_RE

_loaded: dict[str, tuple[float, ConnectedMCR]] = {}  # name -> (card mtime, space): weights load once


def _connected(folder, card=None) -> ConnectedMCR:
    mtime = (folder / connectors.CARD).stat().st_mtime_ns if (folder / connectors.CARD).exists() else 0
    hit = _loaded.get(str(folder))
    if hit and hit[0] == mtime:
        return hit[1]
    space = ConnectedMCR(card or connectors.read_card(folder), folder)
    _loaded[str(folder)] = (mtime, space)
    return space


def get_mcr(name: str) -> MCR:
    """The plugin MCR or stored connector called ``name``."""
    if isinstance(name, MCR):
        return name
    mcr = plugins.get_plugin_mcr(name)
    if mcr is not None:
        return mcr
    folder = connectors.find(name) if NAME_RE.match(name) else None
    if folder is not None:
        return _connected(folder)
    known = sorted(plugins.plugin_mcrs()) + sorted(connectors.list_cards()[0])
    raise UnknownMCRError(f"no space named {name!r}; known: {', '.join(known) or 'none'} (see: mcrgraph plugins, mcrgraph connectors)")


def list_mcrs() -> list[MCR]:
    """Every space: plugin MCRs, then stored connectors (their weights load on first use)."""
    out: list[MCR] = list(plugins.plugin_mcrs().values())
    for name, (folder, card) in connectors.list_cards()[0].items():
        if name not in plugins.plugin_mcrs():
            out.append(_connected(folder, card))
    return out


connected.resolve_space = get_mcr  # connected spaces find their parents here


def check_new_name(name: str, save: bool, overwrite: bool) -> None:
    """A name a new connected space may take: well formed, not a plugin space's, and (when it
    is stored) not a stored connector's unless ``overwrite``."""
    if not NAME_RE.match(name):
        raise ConfigError(f"bad connector name {name!r} (letters, digits and . _ + - only)")
    if plugins.get_plugin_mcr(name) is not None:
        raise ConfigError(f"{name!r} is the name of a plugin space; choose another --name")
    if save and not overwrite and connectors.find(name) is not None:
        raise ConfigError(f"a connector named {name!r} exists already; pass overwrite=True (--overwrite) or another name")
