"""Built-in plugin: the default recipes (mcrgraph/fetch/recipes.py) offered through the
``default_items`` hook, for the papers' spaces (``clip``, ``clap``, ``ulip``) and for spaces
connected over them. Nothing is fetched until a connect reads the items."""
from __future__ import annotations

import mcrgraph


@mcrgraph.hookimpl
def default_items(mcr, modality, role):
    from mcrgraph.fetch.corpora import offer

    return offer(mcr, modality, role)
