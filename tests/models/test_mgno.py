"""MgNO: reference parameter counts, V-cycle linearity, boundary conditions, grids, checkpoints."""

import pytest
import torch

from pdekit.models import count_parameters, get_model, load_model, save_checkpoint
from pdekit.models.mgno import MgConv, MgNO, MgNOConfig

SMALL = {"hidden_channels": 6, "n_layers": 2, "n_iterations": [(1, 1), (1, 1), (2, 0)]}
NS_REFERENCE = {
    "hidden_channels": 32,
    "n_layers": 5,
    "n_iterations": [(1, 0)] * 3 + [(2, 0)] * 2,
    "padding_mode": "circular",
    "bias": True,
    "linear_branch": False,
    "residual": True,
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def one_line_value_error(excinfo):
    message = str(excinfo.value)
    assert isinstance(excinfo.value, ValueError) and message and "\n" not in message
    return message


def expected_count(cfg: MgNOConfig) -> int:
    """Parameters of an MgNO counted from the layer definitions (bias and norm included)."""
    u, total = cfg.hidden_channels, 0
    for layer in range(cfg.n_layers):
        f = cfg.in_channels if layer == 0 else u
        for level, (pre, post) in enumerate(cfg.n_iterations):
            for step in range(pre + post):
                initial = level == 0 and step == 0
                total += 9 * f * u + (u if cfg.bias else 0)  # S
                if not initial:
                    total += 9 * u * f + (f if cfg.bias else 0)  # A
            if level > 0:
                total += 9 * u * u + 9 * f * f + 16 * u * u  # Pi, R, P
                total += 2 * u if cfg.norm else 0
        if cfg.linear_branch:
            total += f * u + u
    return total + u * cfg.out_channels


def test_reference_darcy_model_has_572661_parameters():
    # MgNO_DC(4 layers, 24 channels, 1 input channel, 6 levels [[1,0]]*5 + [[2,0]]): 572,661.
    model = get_model("mgno")
    assert count_parameters(model) == 572_661
    assert model.config.n_levels == 6 and len(model.cycles) == 4


def test_reference_navier_stokes_model_without_its_layernorm():
    # MgNO_NS(5, 32, 5 levels, bias) has 2,885,194 parameters, of which 1,740,800 are the
    # affine weights of LayerNorm([32, 64/2^j, 64/2^j]), j = 0..3, in each of the 5 layers.
    assert count_parameters(get_model("mgno", **NS_REFERENCE)) == 2_885_194 - 1_740_800
    normed = get_model("mgno", norm=True, **NS_REFERENCE)  # GroupNorm: 2 C per correction
    assert count_parameters(normed) == 2_885_194 - 1_740_800 + 5 * 4 * 2 * 32


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"in_channels": 3, "out_channels": 2, "bias": True, "norm": True},
        {"n_iterations": [(2, 1), (1, 2), (1, 0), (3, 0)], "linear_branch": False},
    ],
)
def test_parameter_count_matches_the_layer_definitions(overrides):
    model = get_model("mgno", **{**SMALL, **overrides})
    assert count_parameters(model) == expected_count(model.config)


@pytest.mark.parametrize("shape", [(64, 64), (85, 85), (33, 20), (16, 48), (7, 5), (1, 1)])
def test_zero_padding_accepts_every_grid(shape):
    model = get_model("mgno", in_channels=2, out_channels=3, **SMALL)
    assert model(torch.randn(2, 2, *shape)).shape == (2, 3, *shape)


def test_reflect_and_circular_grids():
    reflect = get_model("mgno", padding_mode="reflect", **SMALL)  # 3 levels: coarsening by 4
    assert reflect(torch.randn(1, 1, 33, 20)).shape == (1, 1, 33, 20)
    with pytest.raises(ValueError) as excinfo:
        reflect(torch.randn(1, 1, 33, 4))
    assert "reflect" in one_line_value_error(excinfo)
    circular = get_model("mgno", padding_mode="circular", **SMALL)
    assert circular(torch.randn(1, 1, 36, 20)).shape == (1, 1, 36, 20)
    with pytest.raises(ValueError) as excinfo:
        circular.check_resolution((85, 85))
    assert "divisible by 4" in one_line_value_error(excinfo)


@pytest.mark.parametrize(
    "overrides",
    [
        {"n_iterations": []},
        {"n_iterations": [(0, 1), (1, 0)]},  # no smoothing on the finest level
        {"n_iterations": [(1, 0), (1, 1)]},  # post-smoothing on the coarsest level
        {"n_iterations": [(1, -1)]},
        {"padding_mode": "replicate"},
        {"zero_boundary": True, "padding_mode": "circular"},
        {"residual": True, "in_channels": 1, "out_channels": 2},
        {"hidden_channels": 0},
        {"norm": "yes"},
    ],
)
def test_invalid_configs_are_one_line(overrides):
    with pytest.raises(ValueError) as excinfo:
        MgNOConfig(**overrides)
    one_line_value_error(excinfo)


def test_yaml_lists_and_bare_ints_become_pairs():
    cfg = MgNOConfig(n_iterations=[[1, 1], [1], 2])
    assert cfg.n_iterations == ((1, 1), (1, 0), (2, 0))
    with pytest.raises(AttributeError):
        cfg.hidden_channels = 8


def test_vcycle_is_linear_without_bias_or_norm():
    # MgConv parameterises a bounded *linear* operator: no nonlinearity inside the cycle.
    torch.manual_seed(0)
    cycle = MgConv(2, 5, [(1, 1), (2, 1), (1, 0)]).double()
    f, g = torch.randn(2, 2, 2, 21, 18, dtype=torch.float64)
    with torch.no_grad():
        combined = cycle(3.0 * f - 0.5 * g)
        separate = 3.0 * cycle(f) - 0.5 * cycle(g)
    torch.testing.assert_close(combined, separate, rtol=1e-10, atol=1e-12)


def test_circular_padding_is_periodic_and_zero_padding_is_not():
    # With periodic padding the network commutes with shifts by the coarsening factor (4 here).
    torch.manual_seed(0)
    x = torch.randn(1, 1, 32, 24, dtype=torch.float64)
    shift = lambda t: torch.roll(t, shifts=(4, -8), dims=(-2, -1))  # noqa: E731
    periodic = get_model("mgno", padding_mode="circular", **SMALL).double()
    dirichlet = get_model("mgno", padding_mode="zeros", **SMALL).double()
    with torch.no_grad():
        torch.testing.assert_close(periodic(shift(x)), shift(periodic(x)))
        assert not torch.allclose(dirichlet(shift(x)), shift(dirichlet(x)), atol=1e-6)


def test_dirichlet_model_returns_zeros_on_the_boundary():
    torch.manual_seed(0)
    cfg = dict(SMALL, bias=True, residual=True, in_channels=2, out_channels=1)
    model = get_model("mgno", zero_boundary=True, **cfg)
    x = torch.randn(3, 2, 29, 34) + 1.0
    with torch.no_grad():
        y = model(x)
    boundary = torch.cat([y[..., 0, :], y[..., -1, :], y[..., :, 0], y[..., :, -1]], dim=-1)
    assert torch.equal(boundary, torch.zeros_like(boundary))
    assert float(y[..., 1:-1, 1:-1].abs().min()) > 0
    # Zero padding supplies the boundary values 0: the interior is the plain model on the
    # interior nodes, with the same weights.
    plain = get_model("mgno", **cfg)
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(y[..., 1:-1, 1:-1], plain(x[..., 1:-1, 1:-1]))
        assert float(plain(x)[..., 0, :].abs().max()) > 1e-3  # not zero without the option


@pytest.mark.parametrize(
    "overrides",
    [
        {"bias": True, "norm": True, "in_channels": 2},
        {"zero_boundary": True, "residual": True, "linear_branch": False},
    ],
)
def test_gradients_reach_every_parameter(overrides):
    torch.manual_seed(0)
    model = get_model("mgno", **{**SMALL, **overrides})
    x = torch.randn(2, model.in_channels, 23, 20)
    loss = (model(x) - torch.randn(2, 1, 23, 20)).square().mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = get_model("mgno", padding_mode="reflect", norm=True, **SMALL)
    save_checkpoint(tmp_path / "mgno.pt", model, extra={"epoch": 1})
    loaded = load_model(tmp_path / "mgno.pt")
    assert isinstance(loaded, MgNO) and loaded.config == model.config
    x = torch.randn(2, 1, 40, 37)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_float64():
    model = get_model("mgno", **SMALL).double()
    assert model(torch.randn(1, 1, 20, 20, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.gpu
def test_cuda_forward_matches_cpu():
    torch.manual_seed(0)
    model = get_model("mgno", **SMALL).double()
    x = torch.randn(2, 1, 45, 32, dtype=torch.float64)
    with torch.no_grad():
        expected = model(x)
        got = model.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(got, expected)
