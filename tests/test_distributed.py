"""Ray Data extraction on a local Ray instance: the same embeddings as mcrgraph.embed on the
driver, for a plugin space and for a stored connector."""
from __future__ import annotations

import numpy as np
import pytest
import ray
import torch
from conftest import QUICK

import mcrgraph
from mcrgraph.tasks.distributed import embed_dataset

ITEMS = [f"c{i}#{j}" for i in range(30) for j in range(2)]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def gathered(ds, items):
    rows = {r["item"]: r["embedding"] for r in ds.take_all()}
    assert sorted(rows) == sorted(items)
    return torch.from_numpy(np.stack([rows[x] for x in items]))


def test_a_plugin_space_embeds_as_on_the_driver(local_ray):
    ds = embed_dataset("synth-clip", "text", ITEMS, batch_size=16)
    want = mcrgraph.embed(mcrgraph.get_mcr("synth-clip"), "text", ITEMS)
    assert torch.equal(gathered(ds, ITEMS), want)


def test_a_stored_connector_and_a_dataset_input(local_ray):
    captions = [f"c{i}#{j}" for j in range(3) for i in range(40)]
    space = mcrgraph.connect("synth-clip", "synth-clap", via="text", items=captions, config=QUICK)
    items = [f"c{i}#7" for i in range(12)]
    ds = embed_dataset(space.name, "audio", ray.data.from_items([{"item": x} for x in items]), batch_size=5)
    torch.testing.assert_close(gathered(ds, items), space.encode("audio", items), atol=1e-6, rtol=1e-6)


def test_bad_requests_fail_on_the_driver(local_ray):
    with pytest.raises(mcrgraph.UnknownMCRError):
        embed_dataset("nope", "text", ITEMS)
    with pytest.raises(mcrgraph.UnknownModalityError):
        embed_dataset("synth-clip", "audio", ITEMS)
    with pytest.raises(mcrgraph.DataError, match="non-empty list"):
        embed_dataset("synth-clip", "text", [])
    with pytest.raises(mcrgraph.DataError, match="'item' column"):
        embed_dataset("synth-clip", "text", ray.data.from_items([{"caption": "x"}]))
