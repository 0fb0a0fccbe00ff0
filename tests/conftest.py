"""Fake MCRs registered per test (llm's pattern), and a fresh store for every test."""
from __future__ import annotations

import hashlib
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never touch the network (set before any hub import)
os.environ["MCRGRAPH_SYNTHETIC"] = "1"  # the synthetic demo spaces, off in a user's graph, for tests (and their subprocesses)

import pytest
import torch
import torch.nn.functional as F

import mcrgraph
from mcrgraph.spaces import plugins, registry


class FakeMCR(mcrgraph.MCR):
    """Deterministic: an item's embedding is a function of (space, modality, item) only, plus
    a per-space view of a shared concept so that spaces can be connected meaningfully."""

    def __init__(self, name, modalities, dim=8, batch_size=4):
        self.name, self.modalities, self.dim, self.batch_size = name, tuple(modalities), dim, batch_size
        self.calls: list[tuple[str, int]] = []
        g = torch.Generator().manual_seed(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
        self.proj = torch.randn(16, dim, generator=g)

    def encode(self, modality, items):
        self.calls.append((modality, len(items)))
        rows = []
        for item in items:
            concept = str(item).split("#")[0]
            seed = int(hashlib.sha256(concept.encode()).hexdigest()[:8], 16)
            z = torch.randn(16, generator=torch.Generator().manual_seed(seed))
            rows.append(z @ self.proj)
        return F.normalize(torch.stack(rows), dim=1)


def private_store(mp: pytest.MonkeyPatch, home):
    """MCRGRAPH_HOME at ``home`` and freshly loaded plugins, until the generator is closed."""
    mp.setenv("MCRGRAPH_HOME", str(home))
    mp.delenv("MCRGRAPH_LOAD_PLUGINS", raising=False)
    plugins.reset()
    registry._loaded.clear()
    yield home
    plugins.reset()
    registry._loaded.clear()


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    """Every test gets its own MCRGRAPH_HOME and freshly loaded plugins."""
    yield from private_store(monkeypatch, tmp_path / "home")


@pytest.fixture
def fakes():
    """Three fake spaces in a chain: fa (image, text), fb (audio, text), fc (3d, image)."""
    spaces = [FakeMCR("fa", ("image", "text")), FakeMCR("fb", ("audio", "text"), dim=6), FakeMCR("fc", ("3d", "image"), dim=5)]
    for s in spaces:
        mcrgraph.register(s)
    yield {s.name: s for s in spaces}
    for s in spaces:
        mcrgraph.unregister(s.name)


CAPTIONS = [f"k{i}#{j}" for j in range(3) for i in range(20)]
QUICK = {"epochs": 2, "batch_size": 16}


@pytest.fixture
def only_fakes(fakes):
    """The fake spaces without the built-in ones (for exact planner answers)."""
    for name in ("synthetic", "mini", "clip", "clap", "ulip"):
        mcrgraph.unregister(name)
    return fakes


# -- fuzzing: tests count the cases they ran; the summary reports them ---------------------
import collections  # noqa: E402

FUZZ_CASES: collections.Counter = collections.Counter()


def pytest_collection_modifyitems(config, items):
    """Tests marked online run only when asked for (-m online): nothing else touches the network."""
    if "online" in (config.getoption("markexpr") or "").replace("not online", ""):
        return
    skip = pytest.mark.skip(reason="reaches the internet; run with: pytest -m online")
    for item in items:
        if "online" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    if FUZZ_CASES:
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(FUZZ_CASES.items()))
        terminalreporter.write_line(f"fuzzing: {sum(FUZZ_CASES.values())} cases ran ({parts})")
