"""Fetching the files real encoders need (``mcrgraph download``), as their plugins declare
them through the ``weights_downloads`` hook, into the places the plugins read, so that a
machine can go offline afterwards."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from ..spaces import plugins
from .download import Download
from ..errors import ConfigError
from ..spaces.registry import get_mcr


@dataclass(frozen=True)
class Planned:
    space: str
    download: Download
    local: Path | None  # where it already is, or None
    size: int | None = None  # bytes: of the local file, as declared, or as the host says (with_sizes)


def declared(space: str) -> list[Download]:
    """The files the plugin of ``space`` declares for it (empty: none needed or none said)."""
    mcr = get_mcr(space)
    return [d for found in plugins.hook().weights_downloads(mcr=mcr) if found for d in found]


def plan_downloads(spaces: Sequence[str], with_sizes: bool = False) -> list[Planned]:
    """What ``download_weights(spaces)`` would fetch; ``["all"]`` means every installed space
    whose plugin declares files. ``with_sizes``: fill in each size, asking the host (one HEAD
    request) for those neither here nor declared; None where it does not answer."""
    if list(spaces) == ["all"] or not spaces:
        files = {n: _declared_quietly(n) for n in plugins.plugin_mcrs()}
    else:
        files = {n: declared(n) for n in dict.fromkeys(spaces)}
        silent = [n for n, found in files.items() if not found]
        if silent:
            with_files = [n for n in plugins.plugin_mcrs() if _declared_quietly(n)]
            raise ConfigError(f"{', '.join(map(repr, silent))}: no files to download (its plugin declares none, or it is "
                              f"set to random init); spaces with files: {', '.join(with_files) or 'none'}")
    planned = [Planned(n, d, d.local()) for n, found in files.items() for d in found]
    if with_sizes:
        planned = [replace(p, size=p.local.stat().st_size if p.local else p.download.size or p.download.remote_size())
                   for p in planned]
    return planned


def download_weights(spaces: Sequence[str], progress: bool = True, on_file=None) -> list[Planned]:
    """Fetch every declared file of ``spaces`` that is not here yet (each verified where a
    digest is declared); returns them with their local paths. ``on_file(planned)`` is called
    after each file."""
    done = []
    for p in plan_downloads(spaces):
        got = Planned(p.space, p.download, p.download.fetch(progress=progress))
        done.append(got)
        if on_file:
            on_file(got)
    return done


def _declared_quietly(name: str) -> list[Download]:
    try:
        return declared(name)
    except Exception:  # a space that fails to load has nothing to download here
        return []
