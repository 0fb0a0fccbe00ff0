"""The JSON card stored beside every connector's weights."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT = "mcrgraph-connector"
FORMAT_VERSION = 1


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


class ConnectorCard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["mcrgraph-connector"] = FORMAT
    format_version: int = FORMAT_VERSION
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

    def score(self) -> float | None:
        """The validation retrieval score the planner uses to rank connectors, if measured."""
        return self.metrics.get("val_r1")
