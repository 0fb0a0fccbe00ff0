"""An example mcrgraph plugin: ``example-bow``, a tiny space for two modalities.

- ``text``: free text. Lower-case words are hashed into buckets; each bucket has a fixed
  random vector; an item's embedding is the sum of its words' vectors, L2-normalised.
- ``tags``: comma-separated tags (``"dog, pet, golden retriever"``). Each whole tag is one
  token. Tags have their own random table: nothing aligns them with text (no training did).

It is not a trained model. It shows the shape a real encoder plugin takes: a cheap
constructor, weights created on the first ``encode``, a stable fingerprint, and rows that
meet the contract (float32, ``(len(items), dim)``, unit norm).
"""
from __future__ import annotations

import hashlib
import re

import torch
import torch.nn.functional as F

import mcrgraph

DIM = 32
BUCKETS = 4096  # hash buckets per modality; collisions are rare for small vocabularies
SEED = 20240601
WORD_RE = re.compile(r"[a-z0-9']+")
EMPTY = "<empty>"  # the token of an item with no words, so that its row is never all zero


def _bucket(token: str) -> int:
    # hashlib, not hash(): Python salts hash() per process, and embeddings must not change
    # between runs (the cache and stored connectors depend on that).
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % BUCKETS


def _tokens(modality: str, item: str) -> list[str]:
    if modality == "text":
        tokens = WORD_RE.findall(item.lower())
    else:  # tags: a multi-word tag such as "golden retriever" is one token
        tokens = [t.strip().lower() for t in item.split(",") if t.strip()]
    return tokens or [EMPTY]


class ExampleBoW(mcrgraph.MCR):
    name = "example-bow"
    modalities = ("text", "tags")
    dim = DIM
    batch_size = 256  # encoding is cheap, so hand over large batches
    # This encoder is faster than reading the on-disk cache, so opt out. A real model
    # should leave cache = True: re-encoding is what the cache saves.
    cache = False

    def __init__(self):
        # Keep construction cheap: `mcrgraph plugins` builds every plugin's MCRs just to list
        # them. The tables are made on the first encode (a real plugin loads weights there).
        self._tables: dict[str, torch.Tensor] | None = None

    def _load(self) -> dict[str, torch.Tensor]:
        if self._tables is None:
            # One seeded generator, drawn in a fixed order: the same tables in every process.
            gen = torch.Generator().manual_seed(SEED)
            self._tables = {m: torch.randn(BUCKETS, DIM, generator=gen) for m in self.modalities}
        return self._tables

    def fingerprint(self) -> str:
        # The default fingerprint hashes tensors held directly as attributes and remembers its
        # first answer, which may come before the first encode, when lazy weights do not exist
        # yet. So hash the recipe that fully determines the tables instead. Bump VERSION when
        # the encoding changes: cached embeddings and connectors built on the old one then no
        # longer match, instead of silently mixing two encoders.
        recipe = f"mcrgraph-example|{self.name}|{DIM}|{BUCKETS}|{SEED}|VERSION=1"
        return hashlib.sha256(recipe.encode()).hexdigest()

    def encode(self, modality, items):
        table = self._load()[modality]
        rows = []
        for item in items:
            if not isinstance(item, str):
                # An MCRGraphError reaches the user as is; any other exception would be
                # wrapped in an EncoderError that names this plugin.
                raise mcrgraph.DataError(f"example-bow encodes strings; got {type(item).__name__} for {modality!r}")
            ids = torch.tensor([_bucket(t) for t in _tokens(modality, item)])
            rows.append(table[ids].sum(dim=0))  # row by row: a batch equals its items one by one
        # float32 (from torch.randn) with unit-norm rows: what the library checks on every return
        return F.normalize(torch.stack(rows), dim=1)


@mcrgraph.hookimpl
def register_mcrs(register):
    register(ExampleBoW())
