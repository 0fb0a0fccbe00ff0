"""The plugin API. A plugin is a module (or object) with functions marked ``@mcrgraph.hookimpl``
named like these; it is found through the ``mcrgraph`` entry-point group or passed to
``mcrgraph.register()``. Every hook is optional."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("mcrgraph")
hookimpl = HookimplMarker("mcrgraph")


@hookspec
def register_mcrs(register: Callable[["MCR"], None]) -> None:  # noqa: F821
    """Call ``register(mcr)`` once for each MCR (an ``mcrgraph.MCR`` instance) the plugin
    provides. Keep construction cheap: load weights on the first ``encode``."""


@hookspec
def register_commands(cli: "click.Group") -> None:  # noqa: F821
    """Add commands to the ``mcrgraph`` CLI (a click group): ``@cli.command() def my_command(): ...``."""


@hookspec(firstresult=True)
def default_items(mcr: "MCR", modality: str, role: str) -> Optional[Sequence[Any]]:  # noqa: F821
    """Items of ``modality`` for ``mcr`` that a connect may use when the user gives none.
    ``role`` is ``"via"`` (the shared modality's items) or ``"memory"`` (unpaired items of a
    non-shared modality). Return None when the plugin has nothing for that MCR."""


@hookspec
def evaluate_space(space: "MCR") -> Optional[Mapping[str, Mapping[str, Mapping[str, float]]]]:  # noqa: F821
    """Held-out results the plugin can measure in ``space`` (any MCR, such as a connected space
    over the plugin's own spaces), as tables: ``{title: {row: {column: value}}}``.
    ``mcrgraph connect`` prints them after training. Return None when there are none."""


@hookspec(firstresult=True)
def item_picture(item: Any) -> Optional["numpy.ndarray"]:  # noqa: F821
    """The picture an image item of the plugin's own kind shows (such as a bundled id,
    ``mini:heldout/image/800``), as uint8 (H, W, 3) RGB, for drawing under a heat map. Return
    None for any item that is not one of the plugin's."""


@hookspec
def weights_downloads(mcr: "MCR") -> Optional[Sequence["Download"]]:  # noqa: F821
    """The files ``mcr`` (one of the plugin's own spaces, as configured) reads its weights
    and tokenizer from, each a ``mcrgraph.fetch.download.Download``: what it is, where it comes from
    (a URL, or a file of a Hugging Face hub repository), where it goes (the place the space
    looks it up, so that it works offline afterwards), and what is known of its size, digest
    and licence. ``mcrgraph download <space>`` fetches them; ``--dry-run`` lists them. Return
    None for spaces that are not the plugin's, or that need no files (random init)."""


@hookspec
def default_galleries() -> Optional[Sequence["GallerySource"]]:  # noqa: F821
    """Galleries the plugin offers out of the box (``mcrgraph serve`` lists them; a search builds
    their rows on first use), each a ``GallerySource``: a name, the modality (may be pinned to
    the space that reads it, ``image@mini-clip``), the items (anything that space's ``encode``
    takes, e.g. bundled ids) and a label per item. Return None when there are none."""


@hookspec(firstresult=True)
def item_media(modality: str, item: Any) -> Optional[Any]:
    """What one of the plugin's own items (such as a bundled id, ``mini:heldout/audio/3``)
    shows a person: for ``image`` a uint8 (H, W, 3) RGB array, for ``audio`` a ``(wave,
    sample_rate)`` pair (mono float32), for ``3d`` an (N, 3) array of points. Return None for
    any item that is not one of the plugin's."""
