"""Importing the official C-MCR / Ex-MCR connector checkpoints (CC BY 4.0, from the papers'
repositories) as stored connectors of our format.

What the official code does, and so what each import reproduces (MCR-PEFT/C-MCR
``cmcr/cmcr_projector.py``, ``cmcr_model.py``; MCR-PEFT/Ex-MCR ``exmcr/exmcr_projector.py``,
``exmcr_model.py``); every input is an L2-normalised encoder embedding, every output is
L2-normalised, and BatchNorm runs with its stored statistics:

- ``clap_clip.pt``: ``Head_A`` (CLAP audio and text) and ``Head_B`` (CLIP image and text), each
  ``net1`` = Linear(512, 1024)-BN-ReLU, ``net2`` = Linear(1024, 512)-BN. Text goes through CLIP.
- ``ulip_clip.pt``: ``Head_A`` (CLIP) and ``Head_B`` (ULIP), each ``net`` = Linear(512, 512)-BN-ReLU.
- ``ex_clap.pt`` / ``ex_ulip.pt``: CLIP is the frozen base; the leaf's (CLAP audio, ULIP 3d)
  embedding goes through ``Head1`` = Linear(512, 512), then ``Head2`` = two stacked
  Linear-BN-ReLU-Linear-BN blocks (``mlp1``, ``mlp2``). No normalisation between them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import connectors
from .version import __version__
from .card import ConnectorCard, SpaceRef
from .errors import ConfigError, ConnectorFileError
from .mcr import NAME_RE
from .methods import get_method
from .safeload import load_torch_weights
from .weights import file_sha256, strip_prefix

DIM = 512
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _linear(src: str, dst: str) -> dict[str, str]:
    return {f"{src}.weight": f"{dst}.weight", f"{src}.bias": f"{dst}.bias"}


def _bn(src: str, dst: str) -> dict[str, str]:
    return {f"{src}.{p}": f"{dst}.{p}" for p in BN}


def _mlp(src: str, dst: str, first: int = 0) -> dict[str, str]:
    """The official ``MLP`` (net1 = Linear-BN-ReLU, net2 = Linear-BN) onto our Projector's
    ``net`` Sequential starting at index ``first``."""
    return {**_linear(f"{src}.net1.0", f"{dst}.{first}"), **_bn(f"{src}.net1.1", f"{dst}.{first + 1}"),
            **_linear(f"{src}.net2.0", f"{dst}.{first + 3}"), **_bn(f"{src}.net2.1", f"{dst}.{first + 4}")}


@dataclass(frozen=True)
class Kind:
    file: str  # the official file name
    method: str
    leaf: str  # which of our spaces besides CLIP: "clap" or "ulip"
    via: str
    config: dict[str, Any]
    keys: dict[str, str]  # official key -> our key
    about: str


KINDS: dict[str, Kind] = {
    "clap-clip": Kind("clap_clip.pt", "c-mcr", "clap", "text", {"layers": 2, "hidden_factor": 2},
                      {**_mlp("Head_B", "a.net"), **_mlp("Head_A", "b.net")},
                      "C-MCR, CLIP (ViT-B/32) <-> CLAP (630k-fusion-best), connected via text"),
    "ulip-clip": Kind("ulip_clip.pt", "c-mcr", "ulip", "image", {"layers": 1, "bn_relu": True},
                      {**_linear("Head_A.net.0", "a.net.0"), **_bn("Head_A.net.1", "a.net.1"),
                       **_linear("Head_B.net.0", "b.net.0"), **_bn("Head_B.net.1", "b.net.1")},
                      "C-MCR, CLIP (ViT-B/32) <-> ULIP-2 (PointBERT), connected via image"),
    "ex-clap": Kind("ex_clap.pt", "ex-mcr", "clap", "text", {"layers": 2, "hidden_factor": 2, "blocks": 2, "f1_normalize": False},
                    {**_linear("Head1", "ext.f1"), **_mlp("Head2.mlp1", "ext.fm.net"), **_mlp("Head2.mlp2", "ext.fm.net", first=5)},
                    "Ex-MCR, CLAP (630k-fusion-best) extended into CLIP (ViT-B/32)"),
    "ex-ulip": Kind("ex_ulip.pt", "ex-mcr", "ulip", "image", {"layers": 2, "hidden_factor": 2, "blocks": 2, "f1_normalize": False},
                    {**_linear("Head1", "ext.f1"), **_mlp("Head2.mlp1", "ext.fm.net"), **_mlp("Head2.mlp2", "ext.fm.net", first=5)},
                    "Ex-MCR, ULIP-2 (PointBERT) extended into CLIP (ViT-B/32)"),
}


def import_official(path: str | Path, kind: str, name: str | None = None, clip: str = "clip", leaf: str | None = None,
                    overwrite: bool = False):
    """Turn an official checkpoint into a stored connector joining the installed spaces
    ``clip`` and ``leaf`` (default: ``clap`` or ``ulip`` by kind); returns the connected space.
    Every key of the file must be one the official heads have, with the official shape."""
    from .connected import ConnectedMCR
    from .registry import get_mcr

    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    k = KINDS[kind]
    path = Path(path).expanduser()
    raw = load_torch_weights(path)  # weights_only=True: a file with code in it is refused
    state = strip_prefix(raw, "module.")  # saved from DataParallel
    _check_keys(state, k, kind, path)
    tensors = {ours: state[theirs].detach().clone() for theirs, ours in k.keys.items()}

    spaces = [get_mcr(clip), get_mcr(leaf or k.leaf)]
    for s in spaces:
        if s.dim != DIM:
            raise ConfigError(f"{kind} heads take {DIM}-d embeddings; space {s.name!r} has dim {s.dim}. "
                              f"Import it onto the encoders the official heads were trained on")
        if k.via not in s.modalities:
            raise ConfigError(f"{kind} connects through {k.via}; space {s.name!r} has no {k.via} ({', '.join(s.modalities)})")
    module = get_method(k.method)
    cfg = module.Config(**k.config)
    name = name or module.default_name(spaces[0].name, spaces[1].name)
    if not NAME_RE.match(name):
        raise ConfigError(f"bad connector name {name!r} (letters, digits and . _ + - only)")
    try:
        module.load_heads(_card(name, k, cfg, spaces, "0" * 64), tensors)  # our heads take them exactly
    except RuntimeError as e:  # a shape that differs from the official heads
        raise ConnectorFileError(f"{path} does not fit the official {kind} heads: {str(e).splitlines()[-1].strip()}") from None
    weights = connectors.weights_bytes(tensors)
    card = _card(name, k, cfg, spaces, hashlib.sha256(weights).hexdigest(),
                 origin=f"imported from the official {k.file} (file {path.name}, sha256 {file_sha256(path)}): {k.about}; "
                        f"heads by the C-MCR/Ex-MCR authors, CC BY 4.0")
    folder = connectors.save(card, weights, overwrite=overwrite)
    return ConnectedMCR(card, folder, tensors=tensors, parents=spaces)


def _card(name: str, k: Kind, cfg, spaces, sha: str, origin: str = "") -> ConnectorCard:
    return ConnectorCard(name=name, method=k.method, spaces=[SpaceRef.of(s) for s in spaces], via=k.via,
                         modalities=list(dict.fromkeys([m for s in spaces for m in s.modalities])), dim=DIM,
                         config=cfg.model_dump(), weights_sha256=sha, mcrgraph_version=__version__,
                         **({"origin": origin} if origin else {}))


def _check_keys(state: dict[str, Any], k: Kind, kind: str, path: Path) -> None:
    missing = [key for key in k.keys if key not in state]
    unexpected = [key for key in state if key not in k.keys]
    if missing or unexpected:
        others = [other for other, ok in KINDS.items() if other != kind and set(ok.keys) == set(state)]
        hint = f"; it looks like --kind {others[0]}" if others else f"; is it the official {k.file}?"
        raise ConnectorFileError(
            f"{path} does not hold the official {kind} heads: missing {missing[:3]}{'…' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'…' if len(unexpected) > 3 else ''}{hint}"
        )
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ConnectorFileError(f"{path}: {key} is a {type(value).__name__}, not a tensor")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ConnectorFileError(f"{path}: {key} has NaN or infinite values")
        if key.endswith("num_batches_tracked"):
            continue
        want = 1024 if any(t in key for t in ("net1.0", "net1.1")) else DIM
        if value.shape[0] != want:
            raise ConnectorFileError(f"{path}: {key} has shape {tuple(value.shape)}; the official heads are {DIM}-d")

