"""mcrgraph.ranking.topk: exact chunked top-k (same result as a stable sort of the full score matrix),
deterministic ties, errors, and the recall of reduced-precision galleries. No timings here:
speed is measured in benchmarks/query.py."""
import pytest
import torch
import torch.nn.functional as F

from mcrgraph.errors import ConfigError, DataError
from mcrgraph.ranking.topk import topk


def unit(n, d, seed):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def reference(q, g, k):
    """What search() did before: a stable descending sort of the whole score matrix."""
    s = q @ g.T
    v, i = torch.sort(s, dim=1, descending=True, stable=True)
    return v[:, :k], i[:, :k]


@pytest.mark.parametrize("nq,n,d,k,chunk", [
    (1, 1000, 32, 10, 1 << 14),   # one chunk
    (3, 1000, 32, 10, 100),       # chunk divides n
    (3, 1000, 32, 10, 333),       # a 1-row tail joins the last chunk
    (3, 1000, 32, 10, 300),       # a 100-row last chunk
    (5, 257, 16, 7, 1),           # one row per chunk
    (5, 257, 16, 7, 6),           # chunk smaller than k
    (4, 50, 8, 50, 7),            # k = n: the whole gallery, sorted
    (2, 4096, 512, 10, 1000),     # the benchmark's dim
    (64, 3000, 64, 10, 512),      # a batch of queries
])
def test_exact_against_a_full_sort_and_torch_topk(nq, n, d, k, chunk):
    q, g = unit(nq, d, 1), unit(n, d, 2)
    v, i = topk(q, g, k, chunk=chunk)
    rv, ri = reference(q, g, k)
    assert v.dtype == torch.float32 and i.dtype == torch.long and v.shape == i.shape == (nq, k)
    assert torch.equal(i, ri)
    if chunk >= 64:
        assert torch.equal(v, rv)  # the same float32 products, bit for bit
    else:  # BLAS may use another kernel for a very narrow product: the last bit can differ
        torch.testing.assert_close(v, rv, rtol=0, atol=1e-6)
    tv, ti = torch.topk(q @ g.T, k, dim=1)  # random data: no ties, so torch.topk agrees too
    assert torch.equal(i, ti) and torch.equal(rv, tv)


def test_batched_equals_one_query_at_a_time():
    q, g = unit(16, 64, 3), unit(5000, 64, 4)
    v, i = topk(q, g, 10, chunk=700)
    for r in range(len(q)):
        v1, i1 = topk(q[r : r + 1], g, 10, chunk=700)
        assert torch.equal(i1[0], i[r])
        torch.testing.assert_close(v1[0], v[r], rtol=0, atol=1e-6)  # a 1-row product may round differently


@pytest.mark.parametrize("chunk", [1, 3, 4, 5, 16, 1000])
def test_ties_go_to_the_lower_gallery_index_across_chunks(chunk):
    # integer-valued rows: many exactly equal scores, including across the k-th place
    gen = torch.Generator().manual_seed(5)
    g = torch.randint(-2, 3, (200, 6), generator=gen).float()
    g[50:60] = g[0]  # whole duplicate rows
    q = torch.randint(-1, 2, (7, 6), generator=gen).float()
    q[0] = g[0]
    for k in (1, 3, 10, 25, 200):
        v, i = topk(q, g, k, chunk=chunk)
        rv, ri = reference(q, g, k)
        assert torch.equal(i, ri), (k, chunk)
        assert torch.equal(v, rv)


@pytest.mark.parametrize("chunk", [7, 40, None])  # a tie wider than the candidates: settled over the whole chunk
def test_all_scores_equal(chunk):
    g = torch.ones(100, 4)
    g[60] = 2
    v, i = topk(torch.ones(2, 4), g, 5, chunk=chunk)
    assert i.tolist() == [[60, 0, 1, 2, 3]] * 2 and v[:, 1:].eq(4).all() and v[:, 0].eq(8).all()


def test_no_queries_give_empty_results():
    v, i = topk(torch.empty(0, 8), unit(100, 8, 12), 5)
    assert v.shape == i.shape == (0, 5)


def test_float64_stays_exact():
    q, g = unit(3, 16, 6).double(), unit(500, 16, 7).double()
    v, i = topk(q, g, 10, chunk=64)
    rv, ri = reference(q, g, 10)
    assert v.dtype == torch.float64 and torch.equal(i, ri) and torch.equal(v, rv)


@pytest.mark.parametrize("kwargs,error,msg", [
    (dict(k=11), ConfigError, "more than the 10 gallery rows"),
    (dict(k=0), ConfigError, "k must be"),
    (dict(k=2.0), ConfigError, "k must be"),
    (dict(chunk=0), ConfigError, "chunk must be"),
    (dict(dtype=torch.int8), ConfigError, "dtype must be"),
    (dict(gallery=torch.empty(0, 4)), DataError, "gallery is empty"),
    (dict(gallery=torch.ones(10, 5)), DataError, "dim 4 but the gallery has dim 5"),
    (dict(queries=torch.ones(4)), DataError, "must be 2-D"),
    (dict(queries=[[1.0] * 4]), DataError, "must be a torch tensor"),
    (dict(queries=torch.tensor([[1.0, 0, 0, 0], [0, float("nan"), 0, 0]])), DataError, "query 1 contains NaN"),
    (dict(queries=torch.tensor([[1.0, float("inf"), 0, 0]])), DataError, "query 0 contains NaN or infinity"),
    (dict(gallery=torch.ones(10, 4).index_fill_(0, torch.tensor([7]), float("nan"))), DataError, "gallery row 7"),
])
def test_errors(kwargs, error, msg):
    args = dict(queries=torch.ones(1, 4), gallery=torch.ones(10, 4), k=3) | kwargs
    with pytest.raises(error, match=msg):
        topk(args.pop("queries"), args.pop("gallery"), args.pop("k"), **args)


def test_nan_in_a_later_chunk_names_its_row():
    g = torch.ones(10, 4)
    g[8, 2] = float("nan")
    with pytest.raises(DataError, match="query 0 and gallery row 8"):  # NaN x 0 is NaN: every query sees it
        topk(torch.tensor([[0.0, 1, 0, 0], [1.0, 0, 0, 0]]), g, 3, chunk=3)


def recall(i, ri):
    return sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(i, ri)) / ri.numel()


# Measured on this data (200 random 512-d unit queries, 20,000 random unit gallery rows: the
# hard case, top scores close together), product in the gallery's type: recall@10 bfloat16
# 0.9865 (top-1 right for 0.975 of the queries), float16 0.9975 (0.995); largest score error
# 7.9e-4 and 1.0e-4.
@pytest.mark.parametrize("dtype,bound", [(torch.bfloat16, 0.97), (torch.float16, 0.99)])
def test_reduced_precision_gallery_recall_at_10(dtype, bound):
    q, g = unit(200, 512, 8), unit(20_000, 512, 9)
    _, ri = reference(q, g, 10)
    stored = g.to(dtype)
    v, i = topk(q, stored, 10, chunk=4096)
    assert recall(i, ri) >= bound
    v2, i2 = topk(q, g, 10, chunk=4096, dtype=dtype)  # rounding chunk by chunk is the same thing
    assert torch.equal(i, i2) and torch.equal(v, v2)
    assert v.dtype == torch.float32
    exact = (q[:, None, :] * g[i]).sum(-1)  # the float32 score of each returned row
    assert (v - exact).abs().max() < (2e-3 if dtype == torch.bfloat16 else 5e-4)


def test_search_gives_what_the_full_sort_gave(only_fakes):
    import mcrgraph

    gallery = [f"k{i % 13}#{i % 3}" for i in range(60)]  # repeated items: tied scores
    queries = ["k3#1", "k6#2", "k3#1"]
    sim = mcrgraph.graph().similarity("image", queries, "text", gallery)
    values, order = torch.sort(sim, dim=1, descending=True, stable=True)  # search() before topk
    for top in (1, 5, 60, None):
        hits = mcrgraph.search("image", queries, "text", gallery, top=top)
        n = top or 60
        assert [[h.index for h in row] for row in hits] == order[:, :n].tolist()
        assert [[h.score for h in row] for row in hits] == values[:, :n].tolist()


@pytest.mark.parametrize("threads", [1, 2])
def test_one_query_scanned_by_several_threads_is_the_same(threads):
    q, g = unit(1, 64, 10), unit(10_000, 64, 11)
    g[5000:5010] = g[42]  # ties across the threads' shares
    q[0] = g[42]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        v, i = topk(q, g, 15, chunk=1000)
    finally:
        torch.set_num_threads(before)
    rv, ri = reference(q, g, 15)
    assert torch.equal(i, ri) and torch.equal(v, rv)
    assert i[0, :11].tolist() == [42] + list(range(5000, 5010))
