import pytest
import torch

import mcrgraph
from conftest import FakeMCR


class Returns(mcrgraph.MCR):
    name, modalities, dim = "bad", ("text",), 4

    def __init__(self, fn):
        self.fn = fn

    def encode(self, modality, items):
        return self.fn(len(items))


def unit(n, d=4):
    return torch.nn.functional.normalize(torch.randn(n, d), dim=1)


@pytest.mark.parametrize("fn,expected", [
    (lambda n: unit(n, 3), "shape (2, 3), expected (2, 4)"),
    (lambda n: unit(n).double(), "dtype torch.float64"),
    (lambda n: torch.full((n, 4), float("nan")), "NaN or inf in 2 of 2 rows"),
    (lambda n: torch.ones(n, 4), "not L2-normalised"),
    (lambda n: unit(n).numpy(), "returned ndarray, expected a torch.Tensor"),
])
def test_bad_returns_name_plugin_and_modality(fn, expected):
    with pytest.raises(mcrgraph.EncoderOutputError) as e:
        mcrgraph.embed(Returns(fn), "text", ["a", "b"], use_cache=False)
    assert expected in str(e.value) and "'bad'" in str(e.value) and "'text'" in str(e.value)


def test_plugin_exception_names_plugin():
    def boom(n):
        raise RuntimeError("kaput")

    with pytest.raises(mcrgraph.EncoderError, match="plugin 'bad' encoding 'text' raised RuntimeError: kaput"):
        mcrgraph.embed(Returns(boom), "text", ["a"], use_cache=False)


def test_batches_and_matches_one_by_one():
    m = FakeMCR("f", ("text",), batch_size=3)
    items = [f"x{i}" for i in range(7)]
    emb = mcrgraph.embed(m, "text", items, use_cache=False)
    assert [n for _, n in m.calls] == [3, 3, 1]
    singles = torch.cat([mcrgraph.embed(m, "text", [i], use_cache=False) for i in items])
    assert torch.allclose(emb, singles, atol=1e-6)


def test_unknown_modality_and_empty_items():
    m = FakeMCR("f", ("text",))
    with pytest.raises(mcrgraph.UnknownModalityError, match="has no modality 'audio'; it has: text"):
        mcrgraph.embed(m, "audio", ["x"])
    with pytest.raises(mcrgraph.UnknownModalityError, match="lower case"):
        mcrgraph.embed(m, "Text", ["x"])
    with pytest.raises(mcrgraph.DataError, match="no items"):
        mcrgraph.embed(m, "text", [])


def test_cache_hit_skips_encoder_and_is_equal():
    m = FakeMCR("f", ("text",), batch_size=100)
    first = mcrgraph.embed(m, "text", ["a", "b"])
    second = mcrgraph.embed(m, "text", ["a", "b"])
    assert len(m.calls) == 1 and torch.equal(first, second)
    mcrgraph.embed(m, "text", ["a", "c"])
    assert len(m.calls) == 2


def test_cache_key_includes_encoder_weights():
    m = FakeMCR("f", ("text",))
    mcrgraph.embed(m, "text", ["a"])
    other = FakeMCR("f", ("text",))
    other.proj = other.proj + 1  # same name, other weights: must not hit m's entry
    mcrgraph.embed(other, "text", ["a"])
    assert len(other.calls) == 1


def test_media_paths_are_keyed_by_content(tmp_path):
    m = FakeMCR("f", ("image",))
    p = tmp_path / "x.bin"
    p.write_bytes(b"one")
    mcrgraph.embed(m, "image", [str(p)])
    p.write_bytes(b"two")
    mcrgraph.embed(m, "image", [str(p)])
    assert len(m.calls) == 2


def test_corrupt_cache_entry_is_recomputed(store):
    m = FakeMCR("f", ("text",))
    first = mcrgraph.embed(m, "text", ["a"])
    [entry] = list((store / "cache").rglob("*.safetensors"))
    entry.write_bytes(entry.read_bytes()[:20])
    again = mcrgraph.embed(m, "text", ["a"])
    assert len(m.calls) == 2 and torch.equal(first, again)


def test_interrupted_cache_write_leaves_no_entry(store, monkeypatch):
    m = FakeMCR("f", ("text",))

    def crash(*a):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as mp:
        mp.setattr("mcrgraph.store.disk.os.replace", crash)
        emb = mcrgraph.embed(m, "text", ["a"])  # the work still succeeds
    assert emb.shape == (1, 8)
    assert list((store / "cache").rglob("*")) == [p for p in (store / "cache").rglob("*") if p.is_dir()]
    mcrgraph.embed(m, "text", ["a"])
    assert len(m.calls) == 2  # nothing half-written was taken for an entry


def test_cache_entry_of_wrong_shape_is_ignored(store):
    m = FakeMCR("f", ("text",))
    mcrgraph.embed(m, "text", ["a"])
    [entry] = list((store / "cache").rglob("*.safetensors"))
    from safetensors.torch import save
    entry.write_bytes(save({"embeddings": torch.zeros(3, 3)}))
    assert mcrgraph.embed(m, "text", ["a"]).shape == (1, 8)
    assert len(m.calls) == 2
