"""Connectors in the store: one folder each, ``model.safetensors`` + ``card.json``."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .card import FORMAT, FORMAT_VERSION, ConnectorCard
from ..errors import ConnectorFileError, StoreError, UnknownMCRError
from ..names import NAME_RE
from .disk import atomic_dir, connectors_dir, recover

WEIGHTS = "model.safetensors"
CARD = "card.json"


def connector_path(name: str) -> Path:
    if not NAME_RE.match(name):
        raise ConnectorFileError(f"bad connector name {name!r} (letters, digits and . _ + - only)")
    return connectors_dir() / name


def find(name: str) -> Path | None:
    """Connector ``name``'s folder, put back first if a crash left it set aside; None if none."""
    folder = connector_path(name)
    return folder if folder.is_dir() or recover(folder) else None


def weights_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    return st_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata={"format": FORMAT})


def save(card: ConnectorCard, data: bytes, overwrite: bool = False) -> Path:
    """Write weights and card in one atomic step; ``card.weights_sha256`` must match ``data``."""
    if hashlib.sha256(data).hexdigest() != card.weights_sha256:
        raise ConnectorFileError("internal: card.weights_sha256 does not match the weights")
    final = connector_path(card.name)
    with atomic_dir(final, overwrite=overwrite) as tmp:
        (tmp / WEIGHTS).write_bytes(data)
        (tmp / CARD).write_text(card.to_json(), encoding="utf-8")
    return final


def read_card(folder: Path) -> ConnectorCard:
    path = Path(folder) / CARD
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConnectorFileError(f"{path} is missing; this folder is not a connector (remove it with: mcrgraph connectors remove {Path(folder).name})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConnectorFileError(f"{path} is not valid JSON ({e})") from None
    except OSError as e:
        raise ConnectorFileError(f"cannot read {path}: {e.strerror}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ConnectorFileError(f"{path} is not an mcrgraph connector card (no \"format\": \"{FORMAT}\")")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConnectorFileError(
            f"{path} has format_version {version!r}; this mcrgraph reads up to {FORMAT_VERSION}: upgrade mcrgraph"
        )
    try:
        return ConnectorCard.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConnectorFileError(f"{path} is invalid: {where}: {first['msg']} ({e.error_count()} problem(s))") from None


def read_weights(folder: Path, card: ConnectorCard) -> dict[str, torch.Tensor]:
    """Load the weights, checking their sha256 against the card before parsing them."""
    path = Path(folder) / WEIGHTS
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConnectorFileError(f"{path} is missing") from None
    except OSError as e:
        raise ConnectorFileError(f"cannot read {path}: {e.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != card.weights_sha256:
        raise ConnectorFileError(
            f"{path} is corrupt or was changed: its sha256 is {digest[:12]}…, the card says {card.weights_sha256[:12]}…; "
            f"retrain it or restore it from a backup"
        )
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise ConnectorFileError(f"{path} is not a readable safetensors file ({e})") from None


def list_cards() -> tuple[dict[str, tuple[Path, ConnectorCard]], dict[str, str]]:
    """Every stored connector: ``({name: (folder, card)}, {folder_name: error})``."""
    root = connectors_dir()
    good: dict[str, tuple[Path, ConnectorCard]] = {}
    bad: dict[str, str] = {}
    if not root.is_dir():
        return good, bad
    for aside in root.glob(".*.old/x"):  # connectors a crash left set aside mid-replacement
        recover(root / aside.parent.name[1:].rsplit(".", 2)[0])
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue  # temp folders of writes in progress
        try:
            card = read_card(folder)
        except ConnectorFileError as e:
            bad[folder.name] = str(e)
            continue
        if card.name != folder.name:
            bad[folder.name] = f"{folder} holds a card named {card.name!r}; rename the folder back"
            continue
        good[card.name] = (folder, card)
    return good, bad


def remove(name: str) -> Path:
    folder = find(name)
    if folder is None:
        raise UnknownMCRError(f"no stored connector named {name!r} (see: mcrgraph connectors)")
    try:
        shutil.rmtree(folder)
    except OSError as e:
        raise StoreError(f"cannot remove {folder}: {e.strerror}") from e
    return folder
