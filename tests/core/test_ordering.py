"""Sample ordering for recycling: greedy chain (SKR Alg. 1), PCA, Hilbert curve; reversibility."""

import numpy as np
import pytest
import torch

from pdekit.core.ordering import (
    _hilbert_index,
    inverse_permutation,
    order_samples,
    path_length,
    split_chains,
)

METHODS = ["greedy", "pca", "hilbert", "none"]


def clustered(n_clusters=8, per=25, d=30, seed=0):
    rng = np.random.default_rng(seed)
    centres = 10.0 * rng.standard_normal((n_clusters, d))
    X = np.concatenate([c + 0.3 * rng.standard_normal((per, d)) for c in centres])
    return torch.from_numpy(X[rng.permutation(len(X))])


def is_permutation(perm, n):
    return perm.dtype == torch.long and sorted(perm.tolist()) == list(range(n))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_returns_a_permutation(method):
    X = clustered()
    perm = order_samples(X, method)
    assert is_permutation(perm, X.shape[0])


def test_greedy_path_is_shorter_than_random_and_pca_on_clustered_data():
    X = clustered()
    greedy = path_length(X, order_samples(X, "greedy"))
    pca = path_length(X, order_samples(X, "pca"))
    rng = np.random.default_rng(1)
    random = np.mean([path_length(X, torch.from_numpy(rng.permutation(len(X)))) for _ in range(5)])
    assert greedy <= pca and greedy <= random
    assert greedy < 0.5 * random  # clusters are visited one after the other
    assert path_length(X, order_samples(X, "hilbert")) < random


def test_greedy_is_the_nearest_neighbour_chain():
    X = torch.tensor([[0.0, 0.0], [5.0, 0.0], [1.0, 0.0], [1.0, 1.5], [4.0, 0.1]])
    perm = order_samples(X, "greedy", start=0).tolist()
    assert perm == [0, 2, 3, 4, 1]
    assert order_samples(X, "greedy", start=1).tolist()[:2] == [1, 4]


def test_greedy_blocked_and_per_step_distances_agree(monkeypatch):
    import pdekit.core.ordering as ordering

    X = clustered(per=10)
    ref = order_samples(X, "greedy", block_size=7)
    monkeypatch.setattr(ordering, "_MAX_DIST_ENTRIES", 0)  # force the O(N d)-memory path
    assert torch.equal(order_samples(X, "greedy", block_size=13), ref)


def test_fields_are_flattened_and_inverse_permutation_restores_order():
    rng = np.random.default_rng(2)
    fields = torch.from_numpy(rng.standard_normal((40, 6, 6)))
    perm = order_samples(fields, "greedy", start=3)
    assert perm[0] == 3
    inv = inverse_permutation(perm)
    assert torch.equal(fields[perm][inv], fields)
    assert torch.equal(perm[inv], torch.arange(40)) and torch.equal(inv[perm], torch.arange(40))
    with pytest.raises(ValueError):
        inverse_permutation(torch.tensor([0, 0, 2]))


@pytest.mark.parametrize("method", METHODS)
def test_identical_features_give_a_valid_permutation(method):
    X = torch.ones(17, 4)
    assert is_permutation(order_samples(X, method), 17)


def test_split_chains_contiguous_and_complete():
    perm = order_samples(clustered(), "greedy")
    chunks = split_chains(perm, 7)
    assert len(chunks) == 7
    assert torch.equal(torch.cat(chunks), perm)
    sizes = [c.numel() for c in chunks]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError):
        split_chains(perm, 0)


@pytest.mark.parametrize("n_dims,n_bits", [(2, 3), (3, 2)])
def test_hilbert_index_is_a_continuous_curve(n_dims, n_bits):
    side = 1 << n_bits
    grid = torch.stack(torch.meshgrid(*[torch.arange(side)] * n_dims, indexing="ij"), -1)
    pts = grid.reshape(-1, n_dims)
    h = _hilbert_index(pts, n_bits)
    assert sorted(h.tolist()) == list(range(side**n_dims))  # a bijection onto 0..side^d - 1
    walk = pts[torch.argsort(h)]
    assert (walk[1:] - walk[:-1]).abs().sum(1).eq(1).all()  # consecutive cells are neighbours


def test_pca_orders_along_the_leading_direction():
    t = torch.linspace(0, 1, 50)
    X = torch.stack([t, 0.01 * torch.sin(40 * t)], 1)[torch.randperm(50, generator=torch.Generator().manual_seed(0))]
    perm = order_samples(X, "pca")
    xs = X[perm, 0]
    assert bool((xs[1:] >= xs[:-1]).all() or (xs[1:] <= xs[:-1]).all())


def test_bad_input():
    with pytest.raises(ValueError, match="method"):
        order_samples(torch.ones(3, 2), "random")
    with pytest.raises(ValueError, match="start"):
        order_samples(torch.ones(3, 2), "greedy", start=5)
    with pytest.raises(ValueError, match="NaN"):
        order_samples(torch.tensor([[0.0], [float("nan")]]))
