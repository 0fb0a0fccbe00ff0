"""Embedding a large corpus on a Ray cluster with Ray Data (the optional ``ray`` extra:
``pip install 'mcrgraph[ray]'``).

Each Ray actor builds the space once and runs batches through ``mcrgraph.embed``, the same
encode path as on one machine: the plugin's own decoding and batching, the output checks, and
the embedding cache (in the ``MCRGRAPH_HOME`` each worker sees). Items are whatever the space's
``encode`` takes and a worker can reach: paths on shared storage, captions, ``mini:`` ids.

    import ray, mcrgraph.tasks.distributed as md
    ray.init("auto")                                   # or ray.init() for a local instance
    ds = md.embed_dataset("clip", "image", paths, concurrency=8, num_gpus=1)
    ds.write_parquet("s3://bucket/clip-image/")        # columns: item, embedding

See docs/architecture.md, "Beyond one machine", for running it on a cluster."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, DataError

COLUMN = "item"


class _Embedder:
    """A Ray Data callable class: one per actor, so the model is built once per worker."""

    def __init__(self, space: str, modality: str):
        from ..spaces.registry import get_mcr

        self.space, self.modality = get_mcr(space), modality

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..spaces.encoding import embed

        items = batch[COLUMN].tolist()
        emb = embed(self.space, self.modality, items)
        return {COLUMN: batch[COLUMN], "embedding": emb.numpy()}


def embed_dataset(space: str, modality: str, items: Sequence[Any] | Any, *, batch_size: int | None = None,
                  concurrency: int = 1, num_cpus: float = 1, num_gpus: float = 0):
    """A Ray Data dataset of ``{"item", "embedding"}`` rows: ``items`` (a list, or a Ray
    dataset with an ``item`` column) embedded by space ``space`` (a plugin or stored connector
    name, found on each worker) in ``modality``, on ``concurrency`` actors of ``num_cpus`` /
    ``num_gpus`` each. Lazy, like every Ray dataset: write it (``write_parquet``) or iterate it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError("embedding on Ray needs Ray Data: pip install 'mcrgraph[ray]'") from None
    from ..spaces.mcr import check_modality
    from ..spaces.registry import get_mcr

    mcr = get_mcr(space)  # fail here, on the driver, for an unknown space or modality
    check_modality(mcr, modality)
    if isinstance(items, ray.data.Dataset):
        if COLUMN not in items.schema().names:
            raise DataError(f"the dataset needs an {COLUMN!r} column; it has: {', '.join(items.schema().names)}")
        ds = items
    else:
        if isinstance(items, (str, bytes)) or not len(items):
            raise DataError("give a non-empty list of items (or a Ray dataset with an 'item' column)")
        ds = ray.data.from_items([{COLUMN: x} for x in items])
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    from ..store.disk import home

    # workers find stored connectors and the cache where the driver does (on a cluster: shared storage)
    env = {"env_vars": {"MCRGRAPH_HOME": str(home())}}
    return ds.map_batches(_Embedder, fn_constructor_args=(mcr.name, modality), batch_size=batch_size or mcr.batch_size,
                          concurrency=concurrency, num_cpus=num_cpus, num_gpus=num_gpus, batch_format="numpy",
                          runtime_env=env)
