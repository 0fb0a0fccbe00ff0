"""A space's fingerprint must not depend on call order (issue 20): the same before and after
``encode``, and the same in a fresh process that encodes first. Run over every registered
space, in fresh processes, with the real plugins on random-init weights."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent('''
    import json, sys
    import numpy as np
    import mcrgraph
    from mcrgraph.spaces.plugins import hook, plugin_mcrs

    t = np.arange(16000) / 16000
    SAMPLES = {"text": ["a dog barking", "a handwritten seven"],
               "image": [np.full((64, 64, 3), 200, np.uint8), np.eye(64, dtype=np.float32)],
               "audio": [(0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32), 16000)] * 2,
               "3d": [np.random.default_rng(0).standard_normal((2048, 3)).astype(np.float32)] * 2}

    def items(space, modality):
        for role in ("via", "memory"):  # a plugin's own items, when it offers some (the demo spaces do)
            offered = hook().default_items(mcr=space, modality=modality, role=role)
            if offered:
                return list(offered)[:2]
        return SAMPLES.get(modality, [])

    def encode_all(space):
        done = []
        for m in space.modalities:
            try:
                space.encode(m, items(space, m))  # the plugin's own encode, as a user may call it
                done.append(m)
            except Exception as e:  # noqa: BLE001 - a space that cannot encode here still must keep its fingerprint
                done.append(f"{m}: {type(e).__name__}")
        return done

    out = {}
    for name, space in sorted(plugin_mcrs().items()):
        if sys.argv[1] == "fingerprint-first":
            before = space.fingerprint()
            done = encode_all(space)
            out[name] = {"before": before, "after": space.fingerprint(), "encoded": done}
        else:
            done = encode_all(space)
            out[name] = {"after": space.fingerprint(), "encoded": done}
    print(json.dumps(out))
''')


def probe(order: str, env: dict) -> dict:
    r = subprocess.run([sys.executable, "-c", PROBE, order], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    env = dict(os.environ, MCRGRAPH_HOME=str(tmp_path_factory.mktemp("home")), MCRGRAPH_CLIP_PRETRAINED="none",
               MCRGRAPH_CLAP_CHECKPOINT="none", MCRGRAPH_ULIP_CHECKPOINT="none", MCRGRAPH_SYNTHETIC="1")
    return probe("fingerprint-first", env), probe("encode-first", env)


def test_every_space_keeps_its_fingerprint_across_encode_and_processes(runs):
    first, encode_first = runs
    assert set(first) == set(encode_first) and len(first) >= 6
    changed = {n: r for n, r in first.items() if not (r["before"] == r["after"] == encode_first[n]["after"])}
    assert changed == {}


def test_the_probe_really_loaded_weights(runs):
    """The check means something only where encode ran: every demo space and the random-init
    clip and ulip plugins encode all their modalities here."""
    first, _ = runs
    for name in ("synth-clip", "mini-clip", "mini-clap", "mini-ulip", "clip", "ulip"):
        if name in first:
            assert all(":" not in m for m in first[name]["encoded"]), (name, first[name]["encoded"])
    assert {"mini-clip", "mini-clap", "synth-clip"} <= set(first)


def test_default_fingerprint_is_taken_before_a_lazy_load():
    """A plugin written as docs/plugins.md's lazy loader, with the default fingerprint: encoding
    first no longer changes it (the base class takes it before the first encode)."""
    import torch

    import mcrgraph

    class Lazy(mcrgraph.MCR):
        name, modalities, dim = "lazy", ("text",), 4

        def __init__(self):
            self.model = None

        def encode(self, modality, items):
            if self.model is None:
                self.model = torch.nn.Linear(1, 4)
            return torch.nn.functional.normalize(self.model(torch.ones(len(items), 1)), dim=1)

    a, b = Lazy(), Lazy()
    fa = a.fingerprint()
    a.encode("text", ["x"])
    b.encode("text", ["x"])  # encodes first
    assert a.fingerprint() == fa == b.fingerprint()
    c = Lazy()
    c.model = torch.nn.Linear(1, 4)  # eager weights are hashed: a different model, a different fingerprint
    assert c.fingerprint() != fa


def test_encoding_first_then_using_a_stored_mini_connector(tmp_path):
    """The issue's reproduction: a connector stored by one process, then in a new process a
    user encodes with mini-clap before using it: no ConnectorMismatchError."""
    env = dict(os.environ, MCRGRAPH_HOME=str(tmp_path / "home"))
    train = "import mcrgraph; mcrgraph.connect('mini-clip', 'mini-clap', via='text', epochs=1)"
    use = textwrap.dedent('''
        import mcrgraph
        mcrgraph.get_mcr("mini-clap").encode("text", ["hi"])
        s = mcrgraph.graph().similarity("audio", ["mini:heldout/audio/1"], "image", ["mini:heldout/image/1", "mini:heldout/image/2"])
        print(tuple(s.shape), s.path.describe())
    ''')
    for code in (train, use):
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    assert "(1, 2) audio@mini-clap -> mini-clip+mini-clap <- image@mini-clip" in r.stdout
