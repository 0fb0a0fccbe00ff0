"""A connected space: the MCR that a connector creates from two spaces. It encodes every
modality of both; it can itself be connected again."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ..store.card import ConnectorCard
from ..errors import ConnectorFileError, ConnectorMismatchError, MCRGraphError, UnknownMCRError, UnknownModalityError
from .domain import shift
from .mcr import MCR, split_pin

#: how a connected space finds its parents by name; the registry sets it (``registry.get_mcr``)
#: so that this module, below the registry, does not import it
resolve_space: Callable[[str], MCR] | None = None


class ConnectedMCR(MCR):
    cache = False  # its parents cache; the heads are cheap
    batch_size = 1 << 30  # hand whole lists to the parents, which batch themselves

    def __init__(self, card: ConnectorCard, folder: Path | None = None, tensors: dict[str, torch.Tensor] | None = None,
                 parents: list[MCR] | None = None):
        self.card = card
        self.folder = folder
        self.name = card.name
        self.modalities = tuple(card.modalities)
        self.dim = card.dim
        self._tensors = tensors
        self._heads = None
        self._parents: list[MCR] | None = parents  # given: the very objects it was trained on

    # -- lazily resolved parts -------------------------------------------------
    def parents(self) -> list[MCR]:
        """The two joined spaces, checked against what the card recorded at training time."""
        if self._parents is None:
            if resolve_space is None:
                raise MCRGraphError(f"connector {self.name!r}: no space registry to find its parents in; import mcrgraph first")
            parents = []
            for ref in self.card.spaces:
                try:
                    mcr = resolve_space(ref.name)
                except UnknownMCRError:
                    raise UnknownMCRError(
                        f"connector {self.name!r} joins {ref.name!r}, which is not installed or stored; install the plugin that provides it"
                    ) from None
                if mcr.dim != ref.dim:
                    raise ConnectorMismatchError(
                        f"connector {self.name!r} was trained on {ref.name!r} with dim {ref.dim}; the installed one has dim {mcr.dim}. "
                        f"Retrain it: {self.retrain_command()}"
                    )
                if mcr.fingerprint() != ref.fingerprint:
                    raise ConnectorMismatchError(
                        f"connector {self.name!r} was trained on a different {ref.name!r} (encoder fingerprint {ref.fingerprint[:12]}…, "
                        f"installed {mcr.fingerprint()[:12]}…): install the encoder it was trained with, or retrain it: {self.retrain_command()}"
                    )
                parents.append(mcr)
            self._parents = parents
        return self._parents

    def retrain_command(self) -> str:
        """The CLI line that trains this connector again over the installed spaces (with the
        plugins' default items; a user who gave --items or --memory adds them again)."""
        a, b = (ref.name for ref in self.card.spaces)
        return f"mcrgraph connect {a} {b} --via {self.card.via} --method {self.card.method} --name {self.name} --overwrite"

    def tensors(self) -> dict[str, torch.Tensor]:
        """The connector's stored tensors (read and checked once)."""
        if self._tensors is None:
            from ..store import connectors

            self._tensors = connectors.read_weights(self.folder, self.card)
        return self._tensors

    def heads(self):
        if self._heads is None:
            from ..methods import get_method

            self._heads = get_method(self.card.method).load_heads(self.card, self.tensors())
        return self._heads

    def _parent_embeddings(self, side: int, modality: str, emb: torch.Tensor) -> torch.Tensor:
        """``emb`` as the heads take it: moved by the card's domain offset for it, if any (``adapt``)."""
        if self.card.offset_for(self.card.spaces[side].name, modality) is None:
            return emb
        key = f"offset.{modality}"
        offset = self.tensors().get(key)
        if offset is None or offset.shape != (emb.shape[-1],):
            raise ConnectorFileError(f"connector {self.name!r}: its card has a {modality} offset but its weights hold "
                                     f"{'no ' + key if offset is None else key + ' of shape ' + str(tuple(offset.shape))}; adapt it again (mcrgraph adapt)")
        return shift(emb, offset)

    # -- the MCR interface -------------------------------------------------------
    def side(self, modality: str) -> tuple[int, str]:
        """Which parent (0 = A, 1 = B) encodes ``modality`` here, and the modality string it is handed."""
        base, pin = split_pin(modality)
        spaces = self.card.spaces
        candidates = [i for i, ref in enumerate(spaces) if base in ref.modalities]
        if not candidates:
            raise UnknownModalityError(f"space {self.name!r} has no modality {base!r}; it has: {', '.join(self.modalities)}")
        if pin is None or pin == self.name:
            return candidates[0], base  # the shared modality goes through space A unless pinned
        for i in candidates:
            parent = self.parents()[i]
            if pin in parent.pin_targets(base):
                return i, base if pin == parent.name else f"{base}@{pin}"
        raise UnknownModalityError(f"{modality!r}: in space {self.name!r}, {base} can be pinned to {', '.join(self.pin_targets(base))}")

    def via_mix(self, modality: str) -> float | None:
        """f when an unpinned via item is encoded by both parents, mixed as
        normalize(f·head_a(via_a) + (1-f)·head_b(via_b)); None: one side encodes it."""
        base, pin = split_pin(modality)
        f = self.card.config.get("via_mix", 1.0)  # cards without it went through space A alone
        if base != self.card.via or pin not in (None, self.name) or f is None or f >= 1:
            return None
        return float(f)

    def encode(self, modality, items):
        from .encoding import embed

        f = self.via_mix(modality)
        if f is not None:  # both-sides via (FreeBind's mixing)
            base = split_pin(modality)[0]
            embs = [embed(parent, base, items) for parent in self.parents()]
            with torch.inference_mode():
                za, zb = (self.heads().apply(i, base, e) for i, e in enumerate(embs))
                return F.normalize(f * za.float() + (1 - f) * zb.float(), dim=-1).contiguous()
        side, sub = self.side(modality)
        emb = embed(self.parents()[side], sub, items)
        with torch.inference_mode():
            emb = self._parent_embeddings(side, split_pin(sub)[0], emb)
            return self.heads().apply(side, split_pin(sub)[0], emb).float().contiguous()

    def dense_modalities(self) -> tuple[str, ...]:
        """The modalities whose parent (the one that encodes them unpinned) has dense features."""
        out = []
        for m in self.modalities:
            side, sub = self.side(m)
            if split_pin(sub)[0] in self.parents()[side].dense_modalities():
                out.append(m)
        return tuple(out)

    def encode_dense(self, modality, items):
        """The parent's patch embeddings, each passed through this connector's head (row by row:
        the heads' BatchNorm is in eval mode, so a patch maps as a whole item would)."""
        from .encoding import embed_dense

        side, sub = self.side(modality)
        dense = embed_dense(self.parents()[side], sub, items)
        n, h, w, d = dense.shape
        with torch.inference_mode():
            flat = self._parent_embeddings(side, split_pin(sub)[0], dense.reshape(n * h * w, d))
            flat = self.heads().apply(side, split_pin(sub)[0], flat)
            return flat.float().reshape(n, h, w, -1).contiguous()

    def route(self, modality: str) -> list[str]:
        side, sub = self.side(modality)
        return self.parents()[side].route(sub) + [self.name]

    def pin_targets(self, modality: str) -> list[str]:
        base, _ = split_pin(modality)
        out = [self.name]
        for ref, parent in zip(self.card.spaces, self.parents()):
            if base in ref.modalities:
                out += [t for t in parent.pin_targets(base) if t not in out]
        return out

    def parent_names(self) -> list[str]:
        return [ref.name for ref in self.card.spaces]

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.card.weights_sha256.encode())
        for ref in self.card.spaces:
            h.update(ref.fingerprint.encode())
        return h.hexdigest()
