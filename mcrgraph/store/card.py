"""The JSON card stored beside every connector's weights."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT = "mcrgraph-connector"
PLAIN_VERSION = 1  # cards without offsets: what every mcrgraph reads
OFFSETS_VERSION = 2  # cards with domain offsets (``mcrgraph adapt``)
FORMAT_VERSION = OFFSETS_VERSION  # the newest this version reads


class SpaceRef(BaseModel):
    """One of the spaces a connector joins, as it was when the connector was trained."""

    model_config = ConfigDict(extra="forbid")
    name: str
    dim: int
    modalities: list[str]
    fingerprint: str = Field(description="the encoder fingerprint (MCR.fingerprint()) at training time")

    @classmethod
    def of(cls, mcr) -> "SpaceRef":
        """The card's record of an installed space, as it is now."""
        return cls(name=mcr.name, dim=mcr.dim, modalities=list(mcr.modalities), fingerprint=mcr.fingerprint())


class DataRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    space: str
    modality: str
    count: int
    fingerprint: str | None = Field(None, description="sha256 of the items, None when they could not be hashed")


class OffsetRef(BaseModel):
    """A domain offset the connected space adds to one modality's parent embeddings before its
    heads (``mcrgraph.adapt``; tensor ``offset.<modality>``)."""

    model_config = ConfigDict(extra="forbid")
    modality: str
    space: str = Field(description="the parent that encodes the modality")
    neighbours: int
    corpus: DataRef = Field(description="the unlabelled items the offset was measured on")
    memory: DataRef = Field(description="the items it was measured against: the connector's training memory")
    norm: float = Field(description="the offset's length (0: the corpus sits where the memory does)")


class ConnectorCard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["mcrgraph-connector"] = FORMAT
    format_version: int = PLAIN_VERSION
    name: str
    method: str
    spaces: list[SpaceRef] = Field(description="the joined spaces, in order (A, B)")
    via: str
    modalities: list[str]
    dim: int
    config: dict[str, Any]
    data: list[DataRef] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    weights_sha256: str
    created: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    mcrgraph_version: str
    origin: str = "trained by mcrgraph"
    offsets: list[OffsetRef] = Field(default_factory=list, description="domain offsets (format_version 2)")

    def to_json(self) -> str:
        """The card as stored: a card without offsets keeps version 1's shape, so older
        mcrgraph versions still read it."""
        return self.model_dump_json(indent=2, exclude=None if self.offsets else {"offsets"}) + "\n"

    def offset_for(self, space: str, modality: str) -> OffsetRef | None:
        return next((o for o in self.offsets if o.space == space and o.modality == modality), None)

    def score(self) -> float | None:
        """The validation retrieval score the planner uses to rank connectors, if measured."""
        return self.metrics.get("val_r1")
