"""Held-out retrieval in the mini world: each mini space on its own (in-space), and the
audio<->image groups that connected spaces are judged on."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

import mcrgraph
from mcrgraph.ranking.metrics import retrieval

from .world import World


def encode_inputs(space: mcrgraph.MCR, modality: str, inputs: Sequence, batch: int = 256) -> torch.Tensor:
    """Encode raw inputs (arrays or texts) in batches, bypassing the cache: training
    evaluations must not fill the user's cache with throwaway towers."""
    parts = [space.encode(modality, list(inputs[i:i + batch])) for i in range(0, len(inputs), batch)]
    return torch.cat(parts) if parts else torch.zeros(0, space.dim)


def first_captions(world: World, kind: str, concepts: Sequence[int]) -> list[str]:
    return [getattr(world.concepts[c], kind)[0] for c in concepts]


def _to_text(space, world, modality, caption_kind, mask_fn=None) -> dict[str, float]:
    inputs, labels = world.arrays("heldout", modality)
    groups = {"all": np.ones(len(labels), bool)}
    if mask_fn:
        groups.update(mask_fn(labels))
    concepts = sorted(set(labels.tolist()))
    gallery = encode_inputs(space, "text", first_captions(world, caption_kind, concepts))
    queries = encode_inputs(space, modality, inputs)
    out = {}
    for group, mask in groups.items():
        if mask.any():
            sim = queries[torch.from_numpy(mask)] @ gallery.T
            out[f"{modality}->text R@1 ({group})"] = round(retrieval(sim, labels[mask], concepts)["r1"], 4)
            out[f"chance ({group})"] = round(1 / len(concepts), 4)
    return out


def in_space(name: str, towers, world: World) -> dict[str, float]:
    """Held-out retrieval inside one mini space (towers or an MCR)."""
    from .space import MiniMCR

    space = towers if isinstance(towers, mcrgraph.MCR) else MiniMCR(name, towers=towers)
    if name == "mini-clip":
        kinds = np.array([c.kind for c in world.concepts])
        return _to_text(space, world, "image", "image_captions", lambda lab: {k: kinds[lab] == k for k in sorted(set(kinds[lab]))})
    if name == "mini-clap":
        data = world.split("heldout")
        kinds = np.array([c.kind for c in world.concepts])
        src = data["audio_source"]

        def groups(lab):
            g = {s: src == s for s in sorted(set(src.tolist()))}
            g["asterisk digits"] = (src == "asterisk") & (kinds[lab] == "digit")
            return g

        return _to_text(space, world, "audio", "audio_captions", groups)
    pts, pl = world.arrays("heldout", "3d")
    img, il = world.arrays("heldout", "image")
    keep = np.isin(il, pl)
    sim = encode_inputs(space, "3d", pts) @ encode_inputs(space, "image", img[keep]).T
    r = retrieval(sim, pl, il[keep])
    return {"3d->image R@1": round(r["r1"], 4), "3d->image mAP": round(r["map"], 4), "chance": round(1 / len(set(pl.tolist())), 4)}


#: FSDD's six real speakers (data/fsdd.npz, build_fsdd.py): the issue 25 world of real voices
REAL_VOICES = "real voices (FSDD), digits"


def _audio_splits(world: World) -> tuple[str, ...]:
    return ("heldout", "fsdd") if world.has("fsdd") else ("heldout",)


def audio_items(world: World) -> tuple[list[str], np.ndarray]:
    """Every held-out audio query: the held-out split's, then (when the world ships it) FSDD's
    real voices; (bundled item ids, concept ids). ``audio_groups`` masks this list."""
    splits = _audio_splits(world)
    ids = [x for s in splits for x in world.ids(s, "audio")]
    return ids, np.concatenate([world.arrays(s, "audio")[1] for s in splits])


def audio_groups(world: World) -> dict[str, np.ndarray]:
    """Held-out audio query groups, as masks over ``audio_items``: the real voice's digits and
    all its words, the festival voices, the event sounds, and FSDD's real voices."""
    src = np.concatenate([world.split(s)["audio_source"].astype(str) for s in _audio_splits(world)])
    _, lab = audio_items(world)
    kinds = np.array([c.kind for c in world.concepts])[lab]
    groups = {
        "real voice, digits": (src == "asterisk") & (kinds == "digit"),
        "real voice, all words": src == "asterisk",
        "festival voices": np.char.startswith(src, "festival"),
        "event sounds vs emoji": src == "event",
        REAL_VOICES: np.char.startswith(src, "fsdd"),
    }
    return {k: v for k, v in groups.items() if v.any()}


def _restricted(groups: dict[str, np.ndarray], labels: np.ndarray, only: np.ndarray | None) -> dict[str, np.ndarray]:
    """The groups cut to the concepts ``only`` (all when None); empty groups dropped."""
    if only is None:
        return groups
    cut = {k: v & np.isin(labels, only) for k, v in groups.items()}
    return {k: v for k, v in cut.items() if v.any()}


def audio_image(space: mcrgraph.MCR, world: World | None = None, pins: tuple[str, str] = ("audio", "image"),
                only: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Held-out audio->image and image->audio retrieval in ``space`` (bundled items, through
    ``mcrgraph.embed``), per audio group (cut to the concepts ``only``); the gallery holds every
    held-out image of the group's concepts."""
    from .world import bundled

    world = world or bundled()
    a_mod, i_mod = pins
    a_ids, a_lab = audio_items(world)
    _, i_lab = world.arrays("heldout", "image")
    ea = mcrgraph.embed(space, a_mod, a_ids)
    ei = mcrgraph.embed(space, i_mod, world.ids("heldout", "image"))
    return _cross(ea, a_lab, ei, i_lab, _restricted(audio_groups(world), a_lab, only), ("audio", "image"))


def _cross(eq, q_lab, eg, g_lab, groups, names) -> dict[str, dict[str, float]]:
    from mcrgraph.ranking.metrics import chance

    out = {}
    q, g = names
    for group, mask in groups.items():
        keep = np.isin(g_lab, np.unique(q_lab[mask]))
        if not keep.any():
            continue
        qm, gm = torch.from_numpy(mask), torch.from_numpy(keep)
        fwd = retrieval(eq[qm] @ eg[gm].T, q_lab[mask], g_lab[keep])
        back = retrieval(eg[gm] @ eq[qm].T, g_lab[keep], q_lab[mask])
        out[group] = {
            "R@1": fwd["r1"], "R@5": fwd["r5"], "mAP": fwd["map"], f"{g}->{q} R@1": back["r1"],
            "chance R@1": chance(q_lab[mask], g_lab[keep])["r1"], "queries": int(mask.sum()), "gallery": int(keep.sum()),
        }
    return out


def audio_3d(space: mcrgraph.MCR, world: World | None = None) -> dict[str, dict[str, float]]:
    """Held-out audio->3d retrieval (a multi-hop path), per audio group that has 3d concepts."""
    from .world import bundled

    world = world or bundled()
    a_ids, a_lab = audio_items(world)
    _, p_lab = world.arrays("heldout", "3d")
    ea = mcrgraph.embed(space, "audio", a_ids)
    ep = mcrgraph.embed(space, "3d", world.ids("heldout", "3d"))
    groups = {k: v & np.isin(a_lab, p_lab) for k, v in audio_groups(world).items()}
    return _cross(ea, a_lab, ep, p_lab, {k: v for k, v in groups.items() if v.any()}, ("audio", "3d"))


def retention(space: mcrgraph.MCR, world: World | None = None, only: np.ndarray | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """Held-out retention (``mcrgraph.tasks.fidelity``) of each mini parent's non-via modality that
    ``space`` joins directly: mini-clap audio->text per audio group, mini-clip image->text per
    image kind, mini-ulip 3d->image; ``{title: {group: metrics}}``."""
    from mcrgraph.tasks.fidelity import retention as measure

    from .world import bundled

    world = world or bundled()
    card = getattr(space, "card", None)
    if card is None:
        return {}
    kinds = np.array([c.kind for c in world.concepts])
    out = {}
    for parent in space.parents():
        if parent.name in ("mini-clap", "mini-clip") and card.via == "text":
            m = "audio" if parent.name == "mini-clap" else "image"
            ids, lab = audio_items(world) if m == "audio" else (world.ids("heldout", m), world.arrays("heldout", m)[1])
            concepts = sorted(set(lab.tolist()))
            groups = audio_groups(world) if m == "audio" else {f"images: {k}": kinds[lab] == k for k in sorted(set(kinds[lab]))}
            groups = _restricted(groups, lab, only)
            out[f"{m}->text retention ({parent.name})"] = measure(
                space, parent, m, "text", ids, lab,
                first_captions(world, f"{m}_captions", concepts), concepts, groups)
        elif parent.name == "mini-ulip" and card.via == "image":
            _, pl = world.arrays("heldout", "3d")
            _, il = world.arrays("heldout", "image")
            keep = np.isin(il, pl)
            img_ids = world.ids("heldout", "image", keep)
            out["3d->image retention (mini-ulip)"] = measure(
                space, parent, "3d", "image", world.ids("heldout", "3d"), pl, img_ids, il[keep])
    return out


def caption_link(space: mcrgraph.MCR, world: World | None = None, only: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Per audio group, the text link an audio->image crossing through text needs (issue 25 item
    4): each group concept's first sound caption ranked among the group concepts' first image
    captions, in ``space``'s text (R@1 "sound caption -> image caption"), and the same sound
    captions ranked among the group's held-out images ("sound caption -> image")."""
    from .world import bundled

    world = world or bundled()
    _, a_lab = audio_items(world)
    _, i_lab = world.arrays("heldout", "image")
    ei = mcrgraph.embed(space, "image", world.ids("heldout", "image")) if "image" in space.modalities else None
    out = {}
    for group, mask in _restricted(audio_groups(world), a_lab, only).items():
        concepts = np.unique(a_lab[mask])
        sound = mcrgraph.embed(space, "text", first_captions(world, "audio_captions", concepts))
        picture = mcrgraph.embed(space, "text", first_captions(world, "image_captions", concepts))
        out[group] = {"sound caption -> image caption R@1": retrieval(sound @ picture.T, concepts, concepts, ks=(1,))["r1"]}
        keep = np.isin(i_lab, concepts)
        if ei is not None and keep.any():
            out[group]["sound caption -> image R@1"] = retrieval(sound @ ei[torch.from_numpy(keep)].T, concepts, i_lab[keep], ks=(1,))["r1"]
    return out
