"""The in-domain score: prototypes of training features and the weight an answer keeps."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from img2loc.models.domain import DomainScore, fit_domain, spherical_kmeans  # noqa: E402


def _clusters(n: int, centres: torch.Tensor, noise: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(centres), (n,), generator=g)
    return centres[pick] + noise * torch.randn(n, centres.shape[1], generator=g)


def test_spherical_kmeans_finds_the_directions_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(4, 32, generator=g), dim=1)
    x = _clusters(400, centres, 0.05, seed=1)
    protos = spherical_kmeans(x, 4, seed=0)
    assert protos.shape == (4, 32)
    torch.testing.assert_close(protos.norm(dim=1), torch.ones(4))
    # Every true direction has a prototype within a few degrees.
    assert (centres @ protos.T).amax(dim=1).min() > 0.99
    torch.testing.assert_close(protos, spherical_kmeans(x, 4, seed=0))
    assert spherical_kmeans(x[:3], 8).shape == (3, 32)  # never more prototypes than photos


def test_fit_domain_keeps_training_like_photos_and_drops_others():
    g = torch.Generator().manual_seed(2)
    centres = torch.nn.functional.normalize(torch.randn(6, 64, generator=g), dim=1)
    train = _clusters(600, centres, 0.1, seed=3)
    dev = _clusters(300, centres, 0.1, seed=4)
    other = torch.randn(200, 64, generator=g)  # nothing like the training photos
    score, fit = fit_domain(train, dev, k=16, quantile=0.05, width=0.25)
    assert fit.prototypes == 16 and fit.train_photos == 600 and fit.dev_photos == 300
    with torch.no_grad():
        w_dev, w_other = score(dev)[:, 0], score(other)[:, 0]
    # The centre sits at the dev scores' 5% quantile: about 5% of dev photos fall back.
    assert abs(float((w_dev < 0.5).float().mean()) - 0.05) < 0.02
    assert fit.fallback_share_dev == pytest.approx(0.05, abs=0.02)
    assert float((w_other < 0.5).float().mean()) > 0.99
    assert w_dev.shape == (300,) and float(w_other.min()) >= 0 and float(w_dev.max()) <= 1


def test_fit_domain_rejects_what_it_cannot_fit():
    x = torch.randn(10, 8)
    with pytest.raises(ValueError, match="quantile"):
        fit_domain(x, x, quantile=1.5)
    with pytest.raises(ValueError, match="at least 2 dev photos"):
        fit_domain(x, x[:1])
    with pytest.raises(ValueError, match="width"):
        DomainScore(x, 0.5, 0.0)
