"""memory_readout: the blocked, online-softmax version gives what one plain softmax over whole
score rows gives (to float rounding), whatever the block sizes, and honours ``threads``."""
import pytest
import torch
import torch.nn.functional as F

from mcrgraph.methods.losses import memory_readout, memory_readouts


def readout_before(queries, memory, temperature, max_elements=1 << 24, values=None):
    """The plain implementation (one softmax over whole score rows), kept as the reference."""
    values = memory if values is None else values
    out = torch.empty(len(queries), values.shape[1], dtype=values.dtype, device=values.device)
    chunk = max(1, max_elements // max(1, len(memory)))
    for start in range(0, len(queries), chunk):
        weights = torch.softmax(queries[start : start + chunk] @ memory.T / temperature, dim=1)
        out[start : start + chunk] = weights @ values
    return F.normalize(out, dim=1)


def unit(n, d, gen):
    return F.normalize(torch.randn(n, d, generator=gen), dim=1)


@pytest.mark.parametrize("n,m,d,max_elements,rows,tau", [
    (37, 53, 13, 1 << 21, 2048, 0.01),   # one chunk, one block
    (37, 53, 13, 1, 2048, 0.01),         # one query row and one memory row at a time
    (101, 29, 17, 29 * 7, 7, 0.05),      # ragged last query chunk, whole memory per block
    (101, 29, 17, 30, 4, 0.05),          # ragged last memory block (7 + 7 + 7 + 7 + 1)
    (300, 1000, 64, 1 << 14, 64, 0.01),
])
def test_readout_matches_one_softmax_over_whole_rows(n, m, d, max_elements, rows, tau):
    gen = torch.Generator().manual_seed(n + m + d)
    q, mem = unit(n, d, gen), unit(m, d, gen)
    got = memory_readout(q, mem, tau, max_elements, rows=rows, fused=False)
    torch.testing.assert_close(got, readout_before(q, mem, tau), rtol=1e-4, atol=1e-5)
    other = torch.randn(m, d + 3, generator=gen)  # values of another width (Ex-MCR's twins)
    torch.testing.assert_close(memory_readout(q, mem, tau, max_elements, values=other, rows=rows, fused=False),
                               readout_before(q, mem, tau, values=other), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("max_elements,rows", [(1 << 21, 2048), (30, 4)])
def test_readouts_share_one_softmax_between_value_sets(max_elements, rows):
    """Ex-MCR reads a leaf memory item's via items and their base twins with the same weights:
    one pass with both value sets gives what two readouts give, each normalised on its own."""
    gen = torch.Generator().manual_seed(7)
    q, mem = unit(41, 9, gen), unit(29, 9, gen)
    twins = torch.randn(29, 12, generator=gen)
    first, second = memory_readouts(q, mem, 0.02, [mem, twins], max_elements, rows=rows)
    torch.testing.assert_close(first, memory_readout(q, mem, 0.02, max_elements, rows=rows, fused=False), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(second, readout_before(q, mem, 0.02, values=twins), rtol=1e-4, atol=1e-5)
    assert first.is_contiguous() and second.is_contiguous() and second.shape == (41, 12)
    with pytest.raises(ValueError, match="29 memory rows"):
        memory_readouts(q, mem, 0.02, [mem, twins[:5]])


def test_readout_rescales_when_the_maximum_comes_in_a_late_block():
    """Each query's nearest memory row sits in the last block, and τ is small enough that the
    first blocks' weights are exp(-100)-scale relative to it: a missing rescale shows."""
    gen = torch.Generator().manual_seed(3)
    mem = unit(64, 8, gen)
    q = mem[-4:] + 0.01 * torch.randn(4, 8, generator=gen)
    q = torch.nn.functional.normalize(q, dim=1)
    for fused in (False, True):
        got = memory_readout(q, mem, 0.005, max_elements=16, rows=2, fused=fused)  # blocks of 8 memory rows
        torch.testing.assert_close(got, readout_before(q, mem, 0.005), rtol=1e-4, atol=1e-5)
        assert torch.isfinite(got).all()


def test_readout_of_large_logits_does_not_overflow():
    gen = torch.Generator().manual_seed(4)
    q, mem = unit(5, 6, gen) * 50, unit(40, 6, gen) * 50  # logits up to 2500 / 0.01 = 2.5e5
    for fused in (False, True):
        got = memory_readout(q, mem, 0.01, max_elements=20, rows=5, fused=fused)
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, readout_before(q, mem, 0.01), rtol=1e-4, atol=1e-5)


def test_readout_floors_vanishing_weights_without_changing_the_result():
    """Clustered memories at τ 0.01 put most weights below e^-87 (float32 subnormals, slow on the
    CPU); the blocked path floors them at e^-80 and still equals the float64 softmax."""
    from mcrgraph.methods.losses import EXP_FLOOR

    g = torch.Generator().manual_seed(3)
    centres = F.normalize(torch.randn(8, 64, generator=g), dim=1)
    memory = F.normalize(centres.repeat_interleave(50, 0) + 0.05 * torch.randn(400, 64, generator=g), dim=1)
    q = memory[::7] + 0.01 * torch.randn(len(memory[::7]), 64, generator=g)
    logits = (q @ memory.T) / 0.01
    assert (logits - logits.amax(1, keepdim=True) < EXP_FLOOR).float().mean() > 0.5  # the case the floor is for
    ref = F.normalize(torch.softmax(logits.double(), 1) @ memory.double(), dim=1).float()
    out = memory_readout(q, memory, 0.01, max_elements=4096, rows=16, fused=False)
    assert torch.allclose(out, ref, atol=1e-6)


def test_readout_of_zero_rows_and_a_zero_vector():
    gen = torch.Generator().manual_seed(0)
    mem = unit(10, 5, gen)
    assert memory_readout(torch.empty(0, 5), mem, 0.01).shape == (0, 5)
    assert torch.equal(memory_readout(unit(3, 5, gen), torch.empty(0, 5), 0.01), torch.zeros(3, 5))
    values = torch.zeros(10, 5)  # every readout row is 0: normalise must not divide by 0
    for fused in (False, None):
        assert torch.equal(memory_readout(unit(4, 5, gen), mem, 0.01, values=values, fused=fused), torch.zeros(4, 5))


def test_readout_sets_and_restores_threads(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    q, mem = unit(20, 8, gen), unit(30, 8, gen)
    before = torch.get_num_threads()
    expected = readout_before(q, mem, 0.01)
    seen = []
    real_matmul = torch.matmul
    monkeypatch.setattr(torch, "matmul", lambda *a, **k: (seen.append(torch.get_num_threads()), real_matmul(*a, **k))[1])
    torch.testing.assert_close(memory_readout(q, mem, 0.01, threads=1, fused=False), expected, rtol=1e-4, atol=1e-5)
    assert seen and set(seen) == {1} and torch.get_num_threads() == before
    seen.clear()
    torch.testing.assert_close(memory_readout(q, mem, 0.01, fused=False), expected, rtol=1e-4, atol=1e-5)  # None: the caller's
    assert set(seen) == {before}


@pytest.mark.parametrize("n,m,d,tau", [(37, 53, 13, 0.01), (300, 1000, 64, 0.01), (101, 29, 17, 0.05), (1, 5000, 512, 0.01)])
def test_fused_readout_matches_one_softmax_over_whole_rows(n, m, d, tau):
    """The SDPA path (flash / memory-efficient kernels only) gives the plain softmax's readout;
    fused=True raises where torch has no such kernel, so this fails rather than skips."""
    gen = torch.Generator().manual_seed(n + m + d + 1)
    q, mem = unit(n, d, gen), unit(m, d, gen)
    expected = readout_before(q, mem, tau)
    torch.testing.assert_close(memory_readout(q, mem, tau, fused=True), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(memory_readout(q, mem, tau, fused=None), expected, rtol=1e-4, atol=1e-5)  # where it applies


def test_fused_readout_is_taken_only_when_asked_and_where_it_applies(monkeypatch):
    gen = torch.Generator().manual_seed(8)
    q, mem = unit(20, 8, gen), unit(30, 8, gen)
    calls, seen = [], []
    real_sdpa = F.scaled_dot_product_attention

    def sdpa(*a, **k):
        calls.append(a[2].shape[-1])
        seen.append(torch.get_num_threads())
        return real_sdpa(*a, **k)

    monkeypatch.setattr(F, "scaled_dot_product_attention", sdpa)
    before = torch.get_num_threads()
    memory_readout(q, mem, 0.01)  # the default: the blocked path
    assert calls == []
    torch.testing.assert_close(memory_readout(q, mem, 0.01, threads=1, fused=None), readout_before(q, mem, 0.01), rtol=1e-4, atol=1e-5)
    assert calls == [8] and seen == [1] and torch.get_num_threads() == before
    memory_readout(q, mem, 0.01, fused=False)
    memory_readouts(q, mem, 0.01, [mem, mem])  # several value sets: blocked, one softmax for both
    assert calls == [8]
    other = torch.randn(30, 11, generator=gen)  # values wider than the queries: no fused kernel, blocked path
    torch.testing.assert_close(memory_readout(q, mem, 0.01, values=other, fused=None), readout_before(q, mem, 0.01, values=other),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(RuntimeError, match="no fused attention kernel"):
        memory_readout(q, mem, 0.01, values=other, fused=True)


def test_recalls_match_the_full_similarity_matrix():
    """Validation recall is computed in chunks (a 100k split would need a 40 GB matrix); it must
    count what the plain x @ yᵀ top-k counts."""
    from mcrgraph.methods.losses import recalls

    gen = torch.Generator().manual_seed(6)
    x = unit(700, 16, gen)
    y = F.normalize(x + 0.3 * torch.randn(700, 16, generator=gen), dim=1)  # noisy pairs: some hits, some misses
    full = (x @ y.T).topk(5, dim=1).indices == torch.arange(700).unsqueeze(1)
    got = recalls(x, y, (1, 5))
    assert got == {1: full[:, :1].any(1).float().mean().item(), 5: full.any(1).float().mean().item()}
    assert 0.05 < got[1] < got[5] < 0.95
    assert recalls(x, x, (1,)) == {1: 1.0}
    assert recalls(x[:3], y[:3], (5,)) == {5: 1.0}  # k above the gallery size: every row is a hit
