"""mcrgraph plugin ``mini`` (the entry point of this distribution): the embedded default spaces
``mini-clip`` (image, text), ``mini-clap`` (audio, text) and ``mini-ulip`` (3d, image), trained on
the bundled mini world; they offer its captions and memories as default connect data, report
held-out retrieval after a connect, add ``mcrgraph eval mini`` and show bundled pictures."""
from __future__ import annotations

import mcrgraph

from .space import MiniMCR
from .towers import SPACES


@mcrgraph.hookimpl
def register_mcrs(register):
    for name in SPACES:
        register(MiniMCR(name))


@mcrgraph.hookimpl
def default_items(mcr, modality, role):
    """The bundle's captions and memories, for a mini space or a space connected over them
    (whose ``modality`` a mini space encodes)."""
    if not (isinstance(mcr, MiniMCR) or _from(mcr, modality, *SPACES)):
        return None
    from .world import bundled

    world = bundled()
    if role == "via" and modality == "text":
        return world.captions()
    if role in ("via", "memory") and modality in ("image", "audio", "3d"):
        return world.ids("memory", modality)
    return None


def _from(space, modality: str, *plugin_spaces: str) -> bool:
    """Whether ``space`` encodes ``modality`` through one of ``plugin_spaces``."""
    try:
        return modality in space.modalities and space.route(modality)[0] in plugin_spaces
    except mcrgraph.MCRGraphError:  # a space whose parents are missing or changed has nothing to report
        return False


@mcrgraph.hookimpl
def evaluate_space(space):
    """Held-out retrieval on the bundled world when ``space`` holds mini-clap's audio and
    mini-clip's images (or mini-ulip's point clouds)."""
    if not _from(space, "audio", "mini-clap"):
        return None
    from .evaluate import audio_3d, audio_image, retention

    tables = {}
    if _from(space, "image", "mini-clip"):
        tables["held-out audio->image retrieval, mini world (R@k, mAP: audio queries)"] = audio_image(space)
    if _from(space, "3d", "mini-ulip"):
        tables["held-out audio->3d retrieval, mini world (R@k, mAP: audio queries)"] = audio_3d(space)
    tables.update({f"held-out {title}: what the connection keeps of the parent's own R@1": t
                   for title, t in retention(space).items()})
    return tables or None


@mcrgraph.hookimpl
def register_commands(cli):
    from .report import eval_mini

    cli.commands["eval"].add_command(eval_mini)


@mcrgraph.hookimpl
def item_picture(item):
    """A bundled image item's 32x32 picture."""
    from .world import bundled, is_bundled

    if not is_bundled(item):
        return None
    import numpy as np

    return np.asarray(bundled().lookup("image", item), dtype=np.uint8)


GALLERIES = (("mini-images", "image", "mini-clip"), ("mini-sounds", "audio", "mini-clap"), ("mini-3d", "3d", "mini-ulip"))


@mcrgraph.hookimpl
def default_galleries():
    """The held-out images, sounds and point clouds of the bundled world, each labelled with its
    concept, pinned to the mini space that reads them."""
    from mcrgraph.plugin import GallerySource

    from .world import bundled

    world = bundled()
    out = []
    for name, modality, space in GALLERIES:
        _, labels = world.arrays("heldout", modality)
        out.append(GallerySource(name=name, modality=f"{modality}@{space}", items=world.ids("heldout", modality),
                                 labels=[world.concepts[int(c)].name for c in labels], plugin="mini",
                                 about=f"the mini world's {len(labels)} held-out {modality} items ({space})"))
    return out


@mcrgraph.hookimpl
def item_media(modality, item):
    from .world import is_bundled

    if not is_bundled(item):
        return None
    from .media import item_media as media

    return media(modality, item)
