import torch

from pdekit.optim import GaussNewtonCG
from pdekit.optim.trainer_adapter import fit_operator, relative_residual


def test_relative_residual_gives_half_the_mean_squared_relative_error():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(4, 2, 6, 6, generator=g)
    pred = y + 0.1 * torch.randn(4, 2, 6, 6, generator=g)
    rel = (pred - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)
    r = relative_residual(pred, y)
    torch.testing.assert_close(0.5 * r.square().sum(), 0.5 * rel.square().mean())


def test_fit_operator_trains_on_mini_batches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 1, 8, 8, generator=g)
    conv = torch.nn.Conv2d(1, 1, 3, padding=1)
    with torch.no_grad():
        y = torch.nn.functional.conv2d(x, torch.randn(1, 1, 3, 3, generator=g), padding=1) + 1.0
    data = torch.utils.data.TensorDataset(x, y)
    torch.manual_seed(0)
    losses = fit_operator(conv, data, GaussNewtonCG(conv.parameters()), epochs=3, batch_size=8)
    assert len(losses) == 12
    assert losses[-1] < 1e-4 * losses[0]
