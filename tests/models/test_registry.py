"""Registry, configs, FNO/TFNO forward shapes, resolution checks and one-line errors."""

import math

import pytest
import torch

from pdekit.errors import PdekitUserError
from pdekit.models import (
    FNO,
    MGTFNO,
    TFNO,
    FNOConfig,
    MGTFNOConfig,
    TFNOConfig,
    available_models,
    count_parameters,
    get_config,
    get_model,
)

SMALL = {"n_modes": (8, 8), "hidden_channels": 8, "n_layers": 2}


def one_line_value_error(excinfo):
    assert isinstance(excinfo.value, ValueError)
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


def smooth(n, channels=1):
    k = torch.arange(n) / n
    x, y = torch.meshgrid(k, k, indexing="ij")
    u = torch.sin(2 * math.pi * x) * torch.cos(4 * math.pi * y) + 0.5 * torch.cos(6 * math.pi * x)
    return u.expand(1, channels, n, n).clone()


def test_builtin_models_registered_with_their_configs():
    assert {"fno", "tfno", "mgtfno"} <= set(available_models())
    for name, cls, cfg in [
        ("fno", FNO, FNOConfig),
        ("tfno", TFNO, TFNOConfig),
        ("mgtfno", MGTFNO, MGTFNOConfig),
    ]:
        model = get_model(name, **SMALL)
        assert type(model) is cls and type(model.config) is cfg and model.model_name == name


def test_unknown_model_lists_choices():
    with pytest.raises(PdekitUserError) as excinfo:
        get_model("unet")
    message = one_line_value_error(excinfo)
    assert "unet" in message and "fno" in message and "mgtfno" in message


def test_unknown_config_key_lists_valid_keys():
    with pytest.raises(ValueError) as excinfo:
        get_model("fno", modes=12)
    message = one_line_value_error(excinfo)
    assert "modes" in message and "n_modes" in message and "hidden_channels" in message


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("fno", {"n_modes": (0, 16)}),
        ("fno", {"n_modes": (4, 4, 4, 4)}),
        ("fno", {"hidden_channels": 0}),
        ("fno", {"domain_padding": 1.5}),
        ("tfno", {"factorization": "svd"}),
        ("tfno", {"rank": 0.0}),
        ("mgtfno", {"levels": -1}),
        ("mgtfno", {"boundary": "circular"}),
        ("fno", {"positional_embedding": 1}),
        ("fno", {"domain_padding": "a lot"}),
        ("tfno", {"rank": True}),
        ("mgtfno", {"padding_fraction": 1.5}),
        ("mgno", {"padding_mode": "same"}),
        ("mgno", {"norm": "yes"}),
        ("lsm", {"channel_multipliers": [1, 0]}),
        ("lsm", {"norm": "layer"}),
    ],
)
def test_invalid_config_values(name, overrides):
    with pytest.raises(ValueError) as excinfo:
        get_config(name, **overrides)
    one_line_value_error(excinfo)


def test_config_is_frozen_and_lists_become_tuples():
    cfg = get_config("tfno", n_modes=[12, 12])
    assert cfg.n_modes == (12, 12)
    with pytest.raises(AttributeError):
        cfg.rank = 0.5


@pytest.mark.parametrize("message, overrides", [
    ("FNOConfig.domain_padding must be a fraction in [0, 1), got 1.5", {"domain_padding": 1.5}),
    ("FNOConfig.hidden_channels must be an integer >= 1, got 0", {"hidden_channels": 0}),
])
def test_config_errors_name_the_field(message, overrides):
    with pytest.raises(PdekitUserError) as excinfo:
        FNOConfig(**overrides)
    assert str(excinfo.value) == message


def test_model_without_config_builds_the_registered_defaults():
    model = TFNO()
    assert type(model.config) is TFNOConfig and model.config == TFNOConfig()
    assert model.n_dim == TFNOConfig().n_dim == 2


def test_model_rejects_config_of_another_model():
    with pytest.raises(ValueError):
        TFNO(FNOConfig())


@pytest.mark.parametrize("name", ["fno", "tfno"])
@pytest.mark.parametrize("shape", [(64, 64), (65, 65), (85, 85), (48, 85), (16, 16)])
def test_forward_shapes_2d(name, shape):
    model = get_model(name, in_channels=2, out_channels=3, **SMALL)
    assert model(torch.randn(2, 2, *shape)).shape == (2, 3, *shape)


@pytest.mark.parametrize("shape", [(64,), (85,), (12, 11, 10)])
def test_forward_shapes_1d_3d(shape):
    model = get_model("tfno", n_modes=(4,) * len(shape), hidden_channels=4, n_layers=1)
    assert model(torch.randn(2, 1, *shape)).shape == (2, 1, *shape)


def test_domain_padding_runs_on_odd_grid():
    model = get_model("fno", domain_padding=0.1, **SMALL)
    assert model(torch.randn(1, 1, 85, 85)).shape == (1, 1, 85, 85)


def test_same_weights_run_at_64_and_85_and_agree_on_nested_grids():
    # The grid embedding excludes the right end (x_i = i/N), so the 85-grid nests in the
    # 170-grid: a discretisation-consistent FNO gives nearly the same values there. With
    # neuraloperator's own SpectralConv the two disagree by ~20 % (see test_spectral_conv).
    torch.manual_seed(0)
    model = get_model("fno", n_modes=(12, 12), hidden_channels=16).eval()
    with torch.no_grad():
        assert model(smooth(64)).shape == (1, 1, 64, 64)
        coarse = model(smooth(85))
        fine = model(smooth(170))[..., ::2, ::2]
    assert float((coarse - fine).norm() / fine.norm()) < 3e-3


def test_wrong_in_channels_is_one_line():
    model = get_model("fno", in_channels=2, **SMALL)
    with pytest.raises(ValueError) as excinfo:
        model(torch.randn(1, 3, 32, 32))
    message = one_line_value_error(excinfo)
    assert "in_channels=2" in message and "3 channels" in message


def test_wrong_dimension_is_one_line():
    model = get_model("fno", **SMALL)
    with pytest.raises(ValueError) as excinfo:
        model(torch.randn(1, 1, 32))
    one_line_value_error(excinfo)
    with pytest.raises(ValueError):
        model.check_resolution((32, 32, 32))
    model.check_resolution((85, 421))


def test_tfno_compresses_fno():
    dense = count_parameters(get_model("fno"))
    tucker = count_parameters(get_model("tfno"))
    assert dense / tucker > 5
