"""LSM: the neural spectral block against a direct transcription, counts, grids, devices."""

import math

import pytest
import torch

from pdekit.models import count_parameters, get_model, load_model, save_checkpoint
from pdekit.models.lsm import LSM, LSMConfig, NeuralSpectralBlock

SMALL = {"width": 8, "n_heads": 4, "n_basis": 6, "n_tokens": 3, "projection_channels": 16}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def one_line_value_error(excinfo):
    message = str(excinfo.value)
    assert isinstance(excinfo.value, ValueError) and message and "\n" not in message
    return message


def naive_block(block: NeuralSpectralBlock, x: torch.Tensor, patch) -> torch.Tensor:
    """The block written out patch by patch and head by head, from the paper's equations."""
    b, c, h, w = x.shape
    ph, pw = patch
    heads, d = block.n_heads, c // block.n_heads
    n_basis = block.basis_weight.shape[1] // 2
    freqs = torch.arange(n_basis, dtype=x.dtype) / n_basis
    kv = block.to_key_value(x)
    q_pix = block.to_query(x)
    out = torch.empty_like(x)
    for bi in range(b):
        for i in range(0, h, ph):
            for j in range(0, w, pw):
                window = (bi, slice(None), slice(i, i + ph), slice(j, j + pw))
                keys = kv[window][:c].reshape(c, -1)  # (C, L)
                values = kv[window][c:].reshape(c, -1)
                queries = q_pix[window].reshape(c, -1)
                tokens = torch.empty(c, block.n_tokens, dtype=x.dtype)
                for hd in range(heads):
                    sl = slice(hd * d, (hd + 1) * d)
                    latent = block.latent[hd]  # (K, d)
                    attn = torch.softmax(latent @ keys[sl], dim=-1)  # (K, L), unscaled
                    tokens[sl] = (attn @ values[sl].T + latent).T
                # t <- t + sum_m W[c, m] sin(pi f_m t) + W[c, M + m] cos(pi f_m t)
                angle = math.pi * tokens[..., None] * freqs
                basis = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)
                tokens = tokens + torch.einsum("ckm,cm->ck", basis, block.basis_weight)
                patch_out = torch.empty(c, ph * pw, dtype=x.dtype)
                for hd in range(heads):
                    sl = slice(hd * d, (hd + 1) * d)
                    attn = torch.softmax(queries[sl].T @ tokens[sl], dim=-1)  # (L, K)
                    patch_out[sl] = (attn @ tokens[sl].T).T
                out[bi, :, i : i + ph, j : j + pw] = patch_out.reshape(c, ph, pw)
    return out + x


def test_spectral_block_matches_the_direct_transcription():
    torch.manual_seed(0)
    block = NeuralSpectralBlock(8, n_basis=5, n_tokens=3, n_heads=2).double()
    with torch.no_grad():  # weights of the same size as the input: the update is not tiny
        block.latent.normal_()
        block.basis_weight.normal_()
    x = torch.randn(2, 8, 6, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(block(x, (3, 4)), naive_block(block, x, (3, 4)))


def expected_count(cfg: LSMConfig) -> int:
    """Parameters of an LSM from the layer definitions (BatchNorm/InstanceNorm affine included)."""

    def double_conv(c_in, c_out, c_mid):
        return 9 * c_in * c_mid + 2 * c_mid + 9 * c_mid * c_out + 2 * c_out

    widths = [cfg.width * m for m in cfg.channel_multipliers]
    total = (cfg.in_channels + 2) * cfg.width + cfg.width  # lifting
    total += sum(double_conv(widths[k - 1] if k else cfg.width, c, c) for k, c in enumerate(widths))
    below = widths[-1]
    for k in reversed(range(len(widths) - 1)):
        c_out = widths[k - 1] if k else cfg.width
        total += double_conv(below + widths[k], c_out, (below + widths[k]) // 2)
        below = c_out
    total += sum(3 * c * c + 3 * c + cfg.n_tokens * c + 2 * cfg.n_basis * c for c in widths)
    p = cfg.projection_channels
    return total + cfg.width**2 + cfg.width + cfg.width * p + p + p * cfg.out_channels + cfg.out_channels


def test_paper_model_has_19_2_million_parameters():
    model = get_model("lsm")  # width 64, 12 bases, 4 tokens, 8 heads: the Darcy / NS model
    assert count_parameters(model) == expected_count(model.config) == 19_187_457


@pytest.mark.parametrize(
    "overrides",
    [{}, {"in_channels": 10, "out_channels": 2, "channel_multipliers": (1, 2, 2), "norm": "instance"}],
)
def test_parameter_count_matches_the_layer_definitions(overrides):
    model = get_model("lsm", **{**SMALL, **overrides})
    assert count_parameters(model) == expected_count(model.config)


@pytest.mark.parametrize("shape", [(64, 64), (85, 85), (33, 20), (16, 48), (7, 5)])
def test_every_grid_is_padded_and_cropped_back(shape):
    model = get_model("lsm", in_channels=2, out_channels=3, **SMALL).eval()
    assert model(torch.randn(2, 2, *shape)).shape == (2, 3, *shape)


def test_patch_size_follows_the_reference_scripts():
    model = LSM(LSMConfig(**SMALL))
    # Darcy 85 -> 96 with patch 6; NS 64 (patch 4); pipe 129 -> 144; airfoil 221 x 51 -> 224 x 64
    assert model.patch_size((85, 85)) == (6, 6) and model.patch_size((64, 64)) == (4, 4)
    assert model.patch_size((129, 129)) == (9, 9) and model.patch_size((221, 51)) == (14, 4)
    assert LSM(LSMConfig(**SMALL, channel_multipliers=(1, 2, 4))).patch_size((85, 20)) == (22, 5)


def test_samples_do_not_mix_in_evaluation_mode():
    # Evaluation mode: every sample is processed alone, so batching changes nothing.
    torch.manual_seed(0)
    model = get_model("lsm", **SMALL).eval()
    x = torch.randn(3, 1, 37, 29)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[1:2], model(x[1:2]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "overrides",
    [
        {"width": 12, "n_heads": 8},
        {"channel_multipliers": (1,)},
        {"channel_multipliers": (1, 0)},
        {"norm": "layer"},
        {"n_basis": 0},
    ],
)
def test_invalid_configs_are_one_line(overrides):
    with pytest.raises(ValueError) as excinfo:
        LSMConfig(**overrides)
    one_line_value_error(excinfo)


def test_wrong_channels_are_one_line():
    model = get_model("lsm", **SMALL)
    with pytest.raises(ValueError) as excinfo:
        model(torch.randn(1, 3, 16, 16))
    assert "in_channels=1" in one_line_value_error(excinfo)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_gradients_reach_every_parameter(norm):
    torch.manual_seed(0)
    model = get_model("lsm", norm=norm, **SMALL)
    x = torch.randn(2, 1, 35, 33)
    loss = (model(x) - torch.randn(2, 1, 35, 33)).square().mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = get_model("lsm", **SMALL)
    model(torch.randn(4, 1, 32, 32))  # update the BatchNorm running statistics
    model.eval()
    save_checkpoint(tmp_path / "lsm.pt", model)
    loaded = load_model(tmp_path / "lsm.pt").eval()
    assert isinstance(loaded, LSM) and loaded.config == model.config
    assert "spectral.0.modes" not in torch.load(tmp_path / "lsm.pt")["state_dict"]
    x = torch.randn(2, 1, 40, 37)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_float64_moves_the_basis_indices():
    model = get_model("lsm", **SMALL).double().eval()
    assert model.spectral[0].modes.dtype == torch.float64
    assert model(torch.randn(1, 1, 20, 20, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.gpu
def test_cuda_forward_matches_cpu():
    torch.manual_seed(0)
    model = get_model("lsm", **SMALL).double().eval()
    x = torch.randn(2, 1, 45, 32, dtype=torch.float64)
    with torch.no_grad():
        expected = model(x)
        got = model.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(got, expected)
