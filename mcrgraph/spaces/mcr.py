"""The MCR base class: one pretrained multi-modal contrastive space."""
from __future__ import annotations

import functools
import hashlib
from typing import Any, ClassVar, Sequence

import torch

from ..errors import UnknownModalityError
from ..names import MODALITY_RE, NAME_RE  # noqa: F401 (re-exported: plugins and connect use them from here)



class MCR:
    """A multi-modal contrastive representation: a space that several modalities share.

    Subclass it, set ``name``, ``modalities`` and ``dim``, and implement ``encode``.
    Load heavy weights lazily (on first ``encode``), so listing plugins stays cheap.

    Optional capability, dense (patch-level) features: a space that can return one embedding
    per location of an item (CLIP's patch tokens) lists those modalities in
    ``dense_modalities()`` and implements ``encode_dense``. Its rows are in the same space as
    ``encode``'s and L2-normalised like them, so connector heads (trained on unit rows) apply
    to them and a query's cosine with each patch is a localization heat map
    (``mcrgraph.tasks.localize``).
    """

    name: ClassVar[str] | str = ""
    modalities: ClassVar[tuple[str, ...]] | tuple[str, ...] = ()
    dim: ClassVar[int] | int = 0
    #: how many items the library passes to one ``encode`` call
    batch_size: int = 64
    #: whether the library may cache this space's embeddings on disk
    cache: bool = True
    #: a built-in demo space (the synthetic toys, the mini world): it never wins a plan over a
    #: user's or a real plugin's space, and connectors built only from demo spaces are demo too
    demo: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for attr in ("encode", "encode_dense"):
            fn = cls.__dict__.get(attr)
            if fn is not None and not getattr(fn, "_fingerprint_first", False):
                setattr(cls, attr, _fingerprint_first(fn))

    def encode(self, modality: str, items: Sequence[Any]) -> torch.Tensor:
        """Return a float32 tensor (len(items), dim) of L2-normalised rows."""
        raise NotImplementedError(f"{type(self).__name__} does not implement encode()")

    def dense_modalities(self) -> tuple[str, ...]:
        """The modalities ``encode_dense`` supports (none by default)."""
        return ()

    def encode_dense(self, modality: str, items: Sequence[Any]) -> torch.Tensor:
        """Patch-level embeddings: float32 (len(items), H, W, dim), each location's row
        L2-normalised and in the same space as ``encode``'s rows; H and W are the same for every
        item. Only for the modalities in ``dense_modalities()``; the library calls it through
        ``mcrgraph.spaces.encoding.embed_dense``, which checks the request and the output."""
        raise NotImplementedError(f"{type(self).__name__} has no dense (patch-level) features")

    def fingerprint(self) -> str:
        """A hash that changes when the encoder or its weights change (keys the cache, checks
        connectors). It must not depend on whether weights were loaded yet: the library asks
        for it before a space's first ``encode``/``encode_dense`` (whoever calls them), and the
        default remembers its first answer. The default hashes the class, name, dim, modalities
        and the tensors of any torch module or tensor held as an attribute at that moment; a
        space that loads weights lazily should hash its weights file (or a name and version)."""
        cached = self.__dict__.get("_mcrgraph_fingerprint")
        if cached:
            return cached
        h = hashlib.sha256()
        cls = type(self)
        h.update(f"{cls.__module__}.{cls.__qualname__}|{self.name}|{self.dim}|{','.join(self.modalities)}".encode())
        for key in sorted(vars(self)):
            value = vars(self)[key]
            if isinstance(value, torch.nn.Module):
                for pname, tensor in sorted(value.state_dict().items()):
                    h.update(f"{key}.{pname}".encode())
                    h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            elif isinstance(value, torch.Tensor):
                h.update(key.encode())
                h.update(value.detach().cpu().contiguous().numpy().tobytes())
        self.__dict__["_mcrgraph_fingerprint"] = h.hexdigest()
        return self.__dict__["_mcrgraph_fingerprint"]

    def weights_present(self) -> bool | None:
        """Whether the weights this space needs are on disk (checked without loading them);
        None when the space has no weights of its own. ``mcrgraph plugins`` shows it."""
        return None

    def weights_hint(self) -> str | None:
        """When ``weights_present()`` is False: how to get them (the variable to set, where to
        download), one line. ``mcrgraph plugins`` prints it under the space."""
        return None

    def route(self, modality: str) -> list[str]:
        """The spaces an item of ``modality`` (``m`` or ``m@space``) passes through, from the
        plugin space that encodes it up to this one. A plugin space is its own route."""
        return [self.name]

    def pin_targets(self, modality: str) -> list[str]:
        """The spaces ``modality`` may be pinned to with ``modality@space`` in this space."""
        return [self.name]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {'/'.join(self.modalities)} dim={self.dim}>"


def _fingerprint_first(fn):
    """Wrap a subclass's encode/encode_dense so the fingerprint is taken before the first call:
    the same answer whether a user encodes first or asks for the fingerprint first."""

    @functools.wraps(fn)
    def encode(self, modality, items):
        self.fingerprint()
        return fn(self, modality, items)

    encode._fingerprint_first = True
    return encode


def split_pin(modality: str) -> tuple[str, str | None]:
    """``"text@clip"`` -> ``("text", "clip")``; ``"audio"`` -> ``("audio", None)``."""
    if not isinstance(modality, str) or not modality.strip():
        raise UnknownModalityError(f"a modality must be a non-empty string, got {modality!r}")
    base, _, space = modality.strip().partition("@")
    base = base.strip()
    if not MODALITY_RE.match(base):
        raise UnknownModalityError(
            f"bad modality name {base!r}: modality names are lower case, like text, image, audio, 3d"
        )
    return base, (space.strip() or None)


def check_modality(mcr: MCR, modality: str) -> str:
    """Validate ``modality`` (optionally ``m@space``) against ``mcr``; return the base modality."""
    base, pin = split_pin(modality)
    if base not in mcr.modalities:
        raise UnknownModalityError(
            f"space {mcr.name!r} has no modality {base!r}; it has: {', '.join(mcr.modalities)}"
        )
    if pin is not None:
        allowed = set(mcr.pin_targets(base))
        if pin not in allowed:
            raise UnknownModalityError(
                f"{modality!r}: in space {mcr.name!r}, {base} can be pinned to {', '.join(sorted(allowed))}"
            )
    return base

