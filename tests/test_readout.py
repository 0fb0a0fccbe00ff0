"""memory_readout: the chunked, in-place-normalising version gives exactly what the earlier
version (normalise the whole output into a new tensor) gave, and honours ``threads``."""
import pytest
import torch
import torch.nn.functional as F

from mcrgraph.methods.losses import memory_readout


def readout_before(queries, memory, temperature, max_elements=1 << 24, values=None):
    """The implementation this one replaced, kept verbatim as the reference."""
    values = memory if values is None else values
    out = torch.empty(len(queries), values.shape[1], dtype=values.dtype, device=values.device)
    chunk = max(1, max_elements // max(1, len(memory)))
    for start in range(0, len(queries), chunk):
        weights = torch.softmax(queries[start : start + chunk] @ memory.T / temperature, dim=1)
        out[start : start + chunk] = weights @ values
    return F.normalize(out, dim=1)


def unit(n, d, gen):
    return F.normalize(torch.randn(n, d, generator=gen), dim=1)


@pytest.mark.parametrize("n,m,d,max_elements,tau", [
    (37, 53, 13, 1 << 24, 0.01),   # one chunk
    (37, 53, 13, 100, 0.01),       # chunks of 1 row
    (101, 29, 17, 29 * 7, 0.05),   # chunks of 7 rows, ragged last chunk
    (300, 1000, 64, 1 << 14, 0.01),
])
def test_readout_is_identical_to_the_previous_implementation(n, m, d, max_elements, tau):
    gen = torch.Generator().manual_seed(n + m + d)
    q, mem = unit(n, d, gen), unit(m, d, gen)
    got = memory_readout(q, mem, tau, max_elements)
    assert torch.equal(got, readout_before(q, mem, tau, max_elements))
    other = torch.randn(m, d + 3, generator=gen)  # values of another width (Ex-MCR's twins)
    assert torch.equal(memory_readout(q, mem, tau, max_elements, values=other),
                       readout_before(q, mem, tau, max_elements, values=other))


def test_readout_of_zero_rows_and_a_zero_vector():
    gen = torch.Generator().manual_seed(0)
    mem = unit(10, 5, gen)
    assert memory_readout(torch.empty(0, 5), mem, 0.01).shape == (0, 5)
    values = torch.zeros(10, 5)  # every readout row is 0: normalise must not divide by 0
    assert torch.equal(memory_readout(unit(4, 5, gen), mem, 0.01, values=values), torch.zeros(4, 5))


def test_readout_sets_and_restores_threads(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    q, mem = unit(20, 8, gen), unit(30, 8, gen)
    before = torch.get_num_threads()
    expected = readout_before(q, mem, 0.01)
    seen = []
    real_softmax = torch.softmax
    monkeypatch.setattr(torch, "softmax", lambda *a, **k: (seen.append(torch.get_num_threads()), real_softmax(*a, **k))[1])
    assert torch.equal(memory_readout(q, mem, 0.01, threads=1), expected)
    assert seen and set(seen) == {1} and torch.get_num_threads() == before
    seen.clear()
    assert torch.equal(memory_readout(q, mem, 0.01), expected)  # None: the caller's setting
    assert set(seen) == {before}
