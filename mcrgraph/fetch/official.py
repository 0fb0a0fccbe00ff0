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

``fetch_official`` downloads a released file from its repository (checked against its git blob
id) and ``connect_official`` imports it for a pair of spaces (``mcrgraph connect --official``).
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..store import connectors
from ..version import __version__
from ..store.card import ConnectorCard, SpaceRef
from ..errors import ConfigError, ConnectorFileError
from ..names import NAME_RE
from ..methods import get_method
from ..store.safeload import load_torch_weights
from ..store.weights import file_sha256, strip_prefix

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
    repo: str = ""  # the GitHub repository that publishes the file, under checkpoints/
    blob_id: str = ""  # the file's git blob id there


KINDS: dict[str, Kind] = {
    "clap-clip": Kind("clap_clip.pt", "c-mcr", "clap", "text", {"layers": 2, "hidden_factor": 2},
                      {**_mlp("Head_B", "a.net"), **_mlp("Head_A", "b.net")},
                      "C-MCR, CLIP (ViT-B/32) <-> CLAP (630k-fusion-best), connected via text",
                      "MCR-PEFT/C-MCR", "61099f73eabf34a1f8da2ab11ffdd87db95b20b3"),
    "ulip-clip": Kind("ulip_clip.pt", "c-mcr", "ulip", "image", {"layers": 1, "bn_relu": True},
                      {**_linear("Head_A.net.0", "a.net.0"), **_bn("Head_A.net.1", "a.net.1"),
                       **_linear("Head_B.net.0", "b.net.0"), **_bn("Head_B.net.1", "b.net.1")},
                      "C-MCR, CLIP (ViT-B/32) <-> ULIP-2 (PointBERT), connected via image",
                      "MCR-PEFT/C-MCR", "350a714d9eef411985e353ba0306b885196f2610"),
    "ex-clap": Kind("ex_clap.pt", "ex-mcr", "clap", "text", {"layers": 2, "hidden_factor": 2, "blocks": 2, "f1_normalize": False},
                    {**_linear("Head1", "ext.f1"), **_mlp("Head2.mlp1", "ext.fm.net"), **_mlp("Head2.mlp2", "ext.fm.net", first=5)},
                    "Ex-MCR, CLAP (630k-fusion-best) extended into CLIP (ViT-B/32)",
                    "MCR-PEFT/Ex-MCR", "f85c9a202324d9374c71b032fd9f42a9c818cf87"),
    "ex-ulip": Kind("ex_ulip.pt", "ex-mcr", "ulip", "image", {"layers": 2, "hidden_factor": 2, "blocks": 2, "f1_normalize": False},
                    {**_linear("Head1", "ext.f1"), **_mlp("Head2.mlp1", "ext.fm.net"), **_mlp("Head2.mlp2", "ext.fm.net", first=5)},
                    "Ex-MCR, ULIP-2 (PointBERT) extended into CLIP (ViT-B/32)",
                    "MCR-PEFT/Ex-MCR", "50b8eff07c85a0cd1084de54537282deffe04567"),
}


def import_official(path: str | Path, kind: str, name: str | None = None, clip: str = "clip", leaf: str | None = None,
                    overwrite: bool = False):
    """Turn an official checkpoint into a stored connector joining the installed spaces
    ``clip`` and ``leaf`` (default: ``clap`` or ``ulip`` by kind); returns the connected space.
    Every key of the file must be one the official heads have, with the official shape."""
    from ..spaces.connected import ConnectedMCR
    from ..spaces.registry import get_mcr

    k = _kind(kind)
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
    # the released heads are the published method: none of mcrgraph's encode-time techniques
    # (bridging needs via items the files do not hold)
    cfg = module.Config(preset="paper", **k.config)
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


# -- fetching the released files ------------------------------------------------------------
URL_ENV = "MCRGRAPH_OFFICIAL_URL"  # a mirror (or a test server) laid out as raw.githubusercontent.com
GITHUB_RAW = "https://raw.githubusercontent.com"
GITHUB_LFS = "https://media.githubusercontent.com/media"  # where GitHub serves a Git LFS file's bytes
BRANCH = "main"
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


def official_url(kind: str, lfs: bool = False) -> str:
    """Where the released ``kind`` file is: ``<base>/<repo>/main/checkpoints/<file>``, base
    raw.githubusercontent.com or ``$MCRGRAPH_OFFICIAL_URL``; with ``lfs``, where GitHub serves
    the bytes of a file kept in Git LFS (``<mirror>/lfs`` on a mirror)."""
    k = _kind(kind)
    mirror = (os.environ.get(URL_ENV) or "").rstrip("/")
    if lfs:
        base = f"{mirror}/lfs" if mirror else GITHUB_LFS
    else:
        base = mirror or GITHUB_RAW
    return f"{base}/{k.repo}/{BRANCH}/checkpoints/{k.file}"


def official_dir() -> Path:
    """Where downloaded official files are kept: ``<store>/official``."""
    from ..store.disk import home

    return home() / "official"


def fetch_official(kind: str, progress: bool = True) -> Path:
    """The released ``kind`` file on this machine, downloaded once into ``official_dir()``
    and checked against its git blob id (a file there that already matches is used with no
    transfer). Should the repository keep the file in Git LFS, the blob id checks the pointer
    git holds, and the bytes are then fetched from GitHub's LFS address and checked against
    the sha256 and size the pointer names. All of it runs under the folder's lock, and only
    verified bytes ever sit at the file's name, so a second process sees the file whole or not
    at all; a stored pointer is checked against the blob id again before it is used."""
    from .download import fetch, git_blob_id, locked

    k = _kind(kind)
    dest = official_dir() / k.file
    pointer = dest.with_name(k.file + ".lfs-pointer")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with locked(dest):
        if pointer.is_file() and git_blob_id(pointer) != k.blob_id:
            pointer.unlink()  # changed since it was checked: fetched again below
        if not pointer.is_file():
            obj = dest.with_name(k.file + ".git-object")  # what the blob id names, before we know which it is
            if dest.is_file() and git_blob_id(dest) == k.blob_id:
                return dest
            fetch(official_url(kind), obj, blob_id=k.blob_id, progress=progress, shown=dest)
            if not _is_lfs_pointer(obj):
                os.replace(obj, dest)
                return dest
            os.replace(obj, pointer)  # verified by its blob id; the real bytes come next
        oid, size = _read_lfs_pointer(pointer)
        return fetch(official_url(kind, lfs=True), dest, sha256=oid, size=size, progress=progress)


def connect_official(a: str, b: str, via: str | None = None, method: str = "c-mcr", name: str | None = None,
                     overwrite: bool = False, progress: bool = True):
    """``connect(a, b, via, method)`` answered with the papers' released heads instead of
    training: downloads (once) and imports the official file for that pair. C-MCR joins CLIP
    with CLAP (via text) or ULIP (via image), either order; Ex-MCR extends CLAP or ULIP into
    CLIP, so ``a`` is CLIP."""
    kind, clip, leaf = official_kind(a, b, via, method)
    return import_official(fetch_official(kind, progress=progress), kind, name=name, clip=clip, leaf=leaf, overwrite=overwrite)


FAMILIES = {"clip": "open_clip", "clap": "laion_clap", "ulip": "ulip-pointbert"}  # what each plugin's spaces say they are


def official_kind(a: str, b: str, via: str | None, method: str) -> tuple[str, str, str]:
    """(kind, the CLIP space, the leaf space) of the released heads that connect ``a`` and
    ``b``; ConfigError naming the released pairs when there are none."""
    role = {name: _role(name) for name in (a, b)}
    released = ("released heads: C-MCR clip+clap --via text, clip+ulip --via image; "
                "Ex-MCR (--method ex-mcr, CLIP first) clip clap --via text, clip ulip --via image")
    clip = next((n for n in (a, b) if role[n] == "clip"), None)
    leaf = next((n for n in (a, b) if n != clip and role[n] in ("clap", "ulip")), None)
    if clip is None or leaf is None:
        raise ConfigError(f"no official heads connect {a!r} and {b!r} ({released})")
    if method == "ex-mcr" and a != clip:
        raise ConfigError(f"the official Ex-MCR heads extend {leaf} into CLIP, the base: put it first "
                          f"(mcrgraph connect {clip} {leaf} --method ex-mcr --official)")
    kind = ({"c-mcr": "{}-clip", "ex-mcr": "ex-{}"}.get(method) or "").format(role[leaf])
    if kind not in KINDS:
        raise ConfigError(f"no official heads for method {method!r} ({released})")
    if via is not None and via != KINDS[kind].via:
        raise ConfigError(f"the official {KINDS[kind].file} connects {clip} and {leaf} via {KINDS[kind].via}, not {via}")
    return kind, clip, leaf


def _role(name: str) -> str | None:
    """Which official encoder space ``name`` is: by name, else by its plugin's family."""
    if name in FAMILIES:
        return name
    from ..spaces.registry import get_mcr

    family = getattr(get_mcr(name), "family", None)
    return next((role for role, fam in FAMILIES.items() if fam == family), None)


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    return KINDS[kind]


def _is_lfs_pointer(path: Path) -> bool:
    if path.stat().st_size > 1024:
        return False
    with open(path, "rb") as f:
        return f.read(len(LFS_POINTER)) == LFS_POINTER


def _read_lfs_pointer(path: Path) -> tuple[str, int]:
    """(sha256, size) of a Git LFS pointer; one that names no sha256 of 64 hex digits or no size
    is refused (it would disable the check on the bytes)."""
    fields = dict(line.split(" ", 1) for line in path.read_text(errors="replace").splitlines() if " " in line)
    oid, size = fields.get("oid", ""), fields.get("size", "")
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", oid) or not size.isdigit():
        raise ConnectorFileError(f"{path} is not a Git LFS pointer mcrgraph can check against (oid {oid[:80]!r}, size {size[:20]!r})")
    return oid[len("sha256:"):], int(size)
