"""topk_readout: the softmax readout over each query's k best keys. k at or above the number of
keys is the full readout; below it, it is what a plain softmax over the k best scores gives; its
error against the full readout falls as k grows and is small for a sharp τ; the FAISS backends
agree with the exact one; bad inputs raise domain errors that say what to do."""
import builtins

import pytest
import torch
import torch.nn.functional as F

from mcrgraph.errors import ConfigError, DataError
from mcrgraph.methods import readout
from mcrgraph.methods.losses import memory_readout
from mcrgraph.methods.readout import readout_error, topk_readout



def tolerance(d, k, tau, dv):
    """How far two correct float32 readouts may differ, from the arithmetic: each term rounds by
    up to eps (float32's machine epsilon, twice the unit roundoff: room for either order of
    summation). A score is a d-term dot product, and exp(score / tau) turns its absolute error
    into a relative error 1/tau times larger; then a k-term softmax sum, a k-term weighted sum
    and a dv-term norm. Outputs are unit rows, so the same bound serves as atol and rtol. Other
    CPUs and thread counts sum in other orders (issue 24: 1.04e-6 against a flat 1e-6)."""
    eps = torch.finfo(torch.float32).eps
    return eps * (d / tau + 2 * k + dv)


def unit(n, d, gen):
    return F.normalize(torch.randn(n, d, generator=gen), dim=1)


def clustered(n_keys, n_queries, d, clusters, gen, spread=0.5):
    """Keys around ``clusters`` centres and queries near random keys: embeddings cluster by concept."""
    centres = unit(clusters, d, gen)
    keys = F.normalize(centres[torch.randint(0, clusters, (n_keys,), generator=gen)]
                       + spread / d ** 0.5 * torch.randn(n_keys, d, generator=gen), dim=1)
    near = keys[torch.randint(0, n_keys, (n_queries,), generator=gen)]
    return F.normalize(near + 0.2 / d ** 0.5 * torch.randn(n_queries, d, generator=gen), dim=1), keys


def plain_topk_readout(q, keys, values, tau, k):
    """The reference: the whole score matrix, torch.topk, one softmax, then normalise."""
    scores, idx = (q @ keys.T).topk(k, dim=1)
    weights = torch.softmax(scores / tau, dim=1)
    return F.normalize(torch.einsum("nk,nkd->nd", weights, values[idx]), dim=1)


@pytest.mark.parametrize("k", [50, 51, 500])
def test_k_at_or_above_the_key_count_is_the_full_readout(k):
    gen = torch.Generator().manual_seed(1)
    q, keys, values = unit(40, 16, gen), unit(50, 16, gen), torch.randn(50, 7, generator=gen)
    full = memory_readout(q, keys, 0.05, values=values)
    tol = tolerance(16, 50, 0.05, 7)
    torch.testing.assert_close(topk_readout(q, keys, values, 0.05, k), full, rtol=tol, atol=tol)
    assert readout_error(q, keys, values, 0.05, k) <= tol


def test_the_topk_path_with_every_key_but_one_is_the_full_readout_to_rounding():
    """k = n - 1 runs the search path; the one key it drops is far away (score -1), so its
    weight is exp(-2 / τ) relative to the best: below float32's resolution at τ = 0.05."""
    gen = torch.Generator().manual_seed(2)
    q, keys = unit(30, 8, gen), unit(60, 8, gen)
    q = F.normalize(q + 3 * keys[:1], dim=1)  # every query near key 0 ...
    keys = torch.cat([keys, -keys[:1]])  # ... and opposite the extra last key
    values = torch.randn(61, 5, generator=gen)
    assert readout_error(q, keys, values, 0.05, 60) <= tolerance(8, 60, 0.05, 5)


@pytest.mark.parametrize("k,chunk", [(1, None), (7, None), (7, 16), (40, 9)])
def test_matches_a_plain_softmax_over_the_k_best_scores(k, chunk, monkeypatch):
    monkeypatch.setattr(readout, "QUERY_BLOCK", 13)  # several query blocks ...
    monkeypatch.setattr(readout, "GATHER_ELEMENTS", 50)  # ... and gather blocks of one or a few rows
    gen = torch.Generator().manual_seed(k)
    q, keys, values = unit(57, 12, gen), unit(90, 12, gen), torch.randn(90, 6, generator=gen)
    got = topk_readout(q, keys, values, 0.05, k, chunk=chunk)
    assert got.shape == (57, 6) and got.dtype == torch.float32
    tol = tolerance(12, k, 0.05, 6)
    torch.testing.assert_close(got, plain_topk_readout(q, keys, values, 0.05, k), rtol=tol, atol=tol)


def test_error_shrinks_as_k_grows_on_clustered_data():
    gen = torch.Generator().manual_seed(3)
    q, keys = clustered(4000, 200, 32, 20, gen)
    full = memory_readout(q, keys, 0.05)
    errors = [readout_error(q, keys, keys, 0.05, k, reference=full) for k in (2, 8, 32, 128, 512)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0] / 10, errors


def test_error_is_small_for_a_sharp_temperature():
    """At τ = 0.01 the weight of a key 0.1 below the best is e^-10: the top 32 of 4,000 clustered
    keys carry nearly all the mass. At τ = 0.2 they do not, so the same k errs far more."""
    gen = torch.Generator().manual_seed(4)
    q, keys = clustered(4000, 200, 32, 20, gen)
    sharp = readout_error(q, keys, keys, 0.01, 32)
    soft = readout_error(q, keys, keys, 0.2, 32)
    assert sharp < 0.01, sharp
    assert soft > 10 * sharp, (sharp, soft)


def test_faiss_backends_agree_with_exact_on_small_data():
    pytest.importorskip("faiss")
    gen = torch.Generator().manual_seed(5)
    q, keys = clustered(2000, 100, 24, 10, gen)
    values = torch.randn(2000, 9, generator=gen)
    exact = topk_readout(q, keys, values, 0.05, 16)
    flat = topk_readout(q, keys, values, 0.05, 16, "faiss-flat")
    torch.testing.assert_close(flat, exact, rtol=0, atol=1e-5)
    # IVF probing every cell scans every key: the same top 16 as the exact scan
    ivf = topk_readout(q, keys, values, 0.05, 16, "faiss-ivf", nlist=8, nprobe=8)
    torch.testing.assert_close(ivf, exact, rtol=0, atol=1e-5)
    # with its defaults (sqrt(n) cells, 16 probes) on clustered keys it stays close to exact
    assert (topk_readout(q, keys, values, 0.05, 16, "faiss-ivf") - exact).abs().max() < 0.05


def test_a_built_index_is_reused_and_must_match_the_keys():
    pytest.importorskip("faiss")
    from mcrgraph.ranking.index import GalleryIndex

    gen = torch.Generator().manual_seed(6)
    q, keys = clustered(500, 40, 16, 5, gen)
    index = GalleryIndex(keys, "faiss-flat")
    torch.testing.assert_close(topk_readout(q, keys, keys, 0.05, 8, "faiss-flat", index=index),
                               topk_readout(q, keys, keys, 0.05, 8), rtol=0, atol=1e-5)
    with pytest.raises(DataError, match="build the index over these keys"):
        topk_readout(q, keys[:400], keys[:400], 0.05, 8, "faiss-flat", index=index)
    with pytest.raises(ConfigError, match="GalleryIndex"):
        topk_readout(q, keys, keys, 0.05, 8, "faiss-flat", index=object())


def test_ivf_queries_that_find_no_key_fall_back_to_the_exact_top_k(monkeypatch):
    """An IVF search may return -1 for every slot of a query (its probed cells are empty)."""
    gen = torch.Generator().manual_seed(7)
    q, keys, values = unit(20, 8, gen), unit(100, 8, gen), torch.randn(100, 4, generator=gen)
    exact = topk_readout(q, keys, values, 0.05, 5)

    def search(keys_, k, *args):
        def found(qb):
            s, i = readout.topk(qb, keys_, k)
            i[::2] = -1  # every other query: nothing found
            i[1::2, 3:] = -1  # the others: only 3 of 5 keys found
            return s, i
        return found

    monkeypatch.setattr(readout, "_searcher", search)
    got = topk_readout(q, keys, values, 0.05, 5)
    tol = tolerance(8, 5, 0.05, 4)
    torch.testing.assert_close(got[::2], exact[::2], rtol=tol, atol=tol)
    torch.testing.assert_close(got[1::2], plain_topk_readout(q[1::2], keys, values, 0.05, 3), rtol=tol, atol=tol)


def test_no_queries_give_no_rows():
    gen = torch.Generator().manual_seed(8)
    keys = unit(10, 4, gen)
    assert topk_readout(torch.zeros(0, 4), keys, torch.randn(10, 3), 0.05, 2).shape == (0, 3)


@pytest.mark.parametrize("change,error,message", [
    (dict(k=0), ConfigError, "k must be a whole number >= 1"),
    (dict(k=2.0), ConfigError, "k must be a whole number"),
    (dict(k=True), ConfigError, "k must be a whole number"),
    (dict(temperature=0.0), ConfigError, "temperature must be a finite number > 0"),
    (dict(temperature=float("nan")), ConfigError, "temperature"),
    (dict(backend="hnsw"), ConfigError, "choose one of: exact, faiss-flat, faiss-ivf"),
    (dict(queries=torch.randn(5, 7)), DataError, "queries have dim 7 but keys have dim 8"),
    (dict(values=torch.randn(11, 3)), DataError, "12 keys but 11 value rows"),
    (dict(keys=torch.zeros(0, 8), values=torch.zeros(0, 3)), DataError, "no keys"),
    (dict(queries=torch.randn(5)), DataError, "queries must be a 2-D"),
    (dict(keys=torch.ones(12, 8, dtype=torch.long)), DataError, "keys must be a 2-D floating-point"),
    (dict(values=[[0.0]] * 12), DataError, "values must be a torch tensor"),
])
def test_bad_inputs_raise_domain_errors(change, error, message):
    gen = torch.Generator().manual_seed(9)
    args = dict(queries=unit(5, 8, gen), keys=unit(12, 8, gen), values=torch.randn(12, 3, generator=gen),
                temperature=0.05, k=4, backend="exact")
    args.update(change)
    with pytest.raises(error, match=message):
        topk_readout(**args)


@pytest.mark.parametrize("name", ["queries", "keys", "values"])
def test_nan_anywhere_is_named_with_its_row(name):
    gen = torch.Generator().manual_seed(10)
    args = dict(queries=unit(5, 8, gen), keys=unit(12, 8, gen), values=torch.randn(12, 3, generator=gen))
    args[name][3, 1] = float("nan")
    with pytest.raises(DataError, match=f"{name} row 3 contains NaN"):
        topk_readout(temperature=0.05, k=4, **args)


@pytest.mark.parametrize("backend", ["faiss-flat", "faiss-ivf"])
@pytest.mark.parametrize("k", [3, 100])  # also when k covers every key and no search is needed
def test_faiss_missing_says_how_to_install_it(backend, k, monkeypatch):
    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    gen = torch.Generator().manual_seed(11)
    keys = unit(12, 8, gen)
    with pytest.raises(ConfigError, match=r"pip install 'mcrgraph\[faiss\]'"):
        topk_readout(unit(5, 8, gen), keys, keys, 0.05, k, backend)


def test_huge_but_finite_values_are_not_taken_for_nan():
    """The NaN check sums each row first; a row whose finite values overflow that sum is fine."""
    keys = torch.eye(3)
    values = torch.tensor([[3e38, 3e38], [1.0, 0.0], [0.0, 1.0]])
    out = topk_readout(torch.eye(3)[1:], keys, values, 0.05, 1)  # no DataError ...
    torch.testing.assert_close(out, torch.eye(2))  # ... and the rows that read normal values are right
