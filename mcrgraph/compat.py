"""Old module paths (before the layer folders, issue 26) keep working for one release, with a
DeprecationWarning: ``import mcrgraph.weights`` gives ``mcrgraph.store.weights``.

Not aliased: names that are now packages (``store``, ``tasks``, ``cli``) and names that are
public functions of the package (``mcrgraph.graph()``, ``mcrgraph.localize()``), which an
imported alias would overwrite on the package.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings

MOVED = {
    "media": "io.media", "pointcloud": "io.pointcloud", "items": "io.items", "files": "io.files",
    "progress": "io.progress",
    "card": "store.card", "connectors": "store.connectors", "checkpoints": "store.checkpoints",
    "weights": "store.weights", "safeload": "store.safeload",
    "topk": "ranking.topk", "index": "ranking.index", "metrics": "ranking.metrics",
    "mcr": "spaces.mcr", "pretrained": "spaces.pretrained", "connected": "spaces.connected",
    "registry": "spaces.registry", "plugins": "spaces.plugins", "hookspecs": "spaces.hookspecs",
    "lineage": "spaces.lineage", "encoding": "spaces.encoding", "cache": "spaces.cache",
    "fingerprint": "spaces.fingerprint",
    "download": "fetch.download", "corpora": "fetch.corpora", "recipes": "fetch.recipes",
    "official": "fetch.official", "encoder_weights": "fetch.encoders",
    "planner": "planning.planner", "graph_picture": "planning.picture",
    "fidelity": "tasks.fidelity", "distributed": "tasks.distributed",
    "cli_common": "cli.common", "cli_tasks": "cli.queries", "drawing": "cli.drawing",
    "datasets.commands": "cli.datasets",
}


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("mcrgraph.") and fullname[9:] in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        new = "mcrgraph." + MOVED[spec.name[9:]]
        hint = "; plugins: import from mcrgraph.plugin" if spec.name[9:] in PLUGIN_NAMES else ""
        warnings.warn(f"{spec.name} moved to {new}{hint} (the old path goes in the next release)",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)  # the module itself, so both names share one object

    def exec_module(self, module):
        pass


PLUGIN_NAMES = {"media", "pointcloud", "weights", "safeload", "pretrained", "download", "hookspecs", "mcr", "progress"}


def install() -> None:
    if any(isinstance(f, _OldPaths) for f in sys.meta_path):
        return
    # right after the path finder: an editable install's finder would otherwise answer first
    # with a stale copy of the old file where one still lies in its source folder
    at = next((i + 1 for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder), len(sys.meta_path))
    sys.meta_path.insert(at, _OldPaths())
