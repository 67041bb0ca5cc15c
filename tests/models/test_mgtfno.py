"""Multi-grid patching against neuraloperator's MultigridPatching2D, and the MG-TFNO model."""

import pytest
import torch
from neuralop.training.patching import MultigridPatching2D

from pdekit.models import MultigridPatching, count_parameters, get_model

SMALL = {"n_modes": (8, 8), "hidden_channels": 8, "n_layers": 2}


def upstream_patch(x, levels, padding_fraction):
    mg = MultigridPatching2D(torch.nn.Identity(), levels=levels, padding_fraction=padding_fraction)
    patches, _ = mg.patch(x, x)
    return mg, patches


@pytest.mark.parametrize("levels", [1, 2])
@pytest.mark.parametrize("padding_fraction", [0.0625, 0.1])
@pytest.mark.parametrize("shape", [(64, 64), (32, 64)])
def test_periodic_patching_equals_neuraloperator(levels, padding_fraction, shape):
    torch.manual_seed(0)
    x = torch.randn(2, 3, *shape)
    mg, expected = upstream_patch(x, levels, padding_fraction)
    ours = MultigridPatching(levels, padding_fraction, boundary="periodic")
    patches = ours.patch(x)
    assert torch.equal(patches, expected)
    stitched, _ = mg.unpatch(expected[:, :3], x, evaluation=True)
    assert torch.equal(ours.unpatch(patches[:, :3], shape), stitched)


def test_neuraloperator_crashes_where_ours_works():
    x = torch.randn(1, 1, 64, 64)
    # levels=0: unpatch reads attributes that patch never set.
    mg = MultigridPatching2D(torch.nn.Identity(), levels=0, padding_fraction=0.1)
    with pytest.raises(AttributeError):
        mg.unpatch(*mg.patch(x, x))
    assert torch.equal(MultigridPatching(0, 0.1).patch(x), x)
    # levels=3 on 64: patches of 8 -> coarse stride 1 -> one window too many upstream.
    with pytest.raises(RuntimeError):
        upstream_patch(x, 3, 0.0625)
    assert MultigridPatching(3, 0.0625, "periodic").patch(x).shape == (64, 4, 16, 16)


@pytest.mark.parametrize("boundary", ["zeros", "reflect"])
def test_non_periodic_differs_only_outside_the_domain(boundary):
    torch.manual_seed(1)
    x = torch.rand(1, 1, 64, 64) + 1.0  # positive, like a Darcy coefficient
    _, periodic = upstream_patch(x, 1, 0.125)
    ours = MultigridPatching(1, 0.125, boundary).patch(x)
    p = 8  # round(64 * 0.125)
    # Fine channel, patch 0 (top left): its padding reaches outside on the top and left only.
    assert torch.equal(ours[0, 0, p:, p:], periodic[0, 0, p:, p:])
    assert not torch.equal(ours[0, 0, :p], periodic[0, 0, :p])
    if boundary == "zeros":
        assert ours[0, 0, :p].abs().max() == 0 and ours[0, 0, :, :p].abs().max() == 0
    else:  # mirror about row 0: padded row p - k holds row k
        assert torch.equal(ours[0, 0, p - 3, p:], ours[0, 0, p + 3, p:])
    # The unpadded patches themselves are the same in every mode.
    centre = (slice(None), slice(0, 1), slice(p, -p), slice(p, -p))
    assert torch.equal(ours[centre], periodic[centre])


ROUND_TRIPS = [
    (boundary, levels, shape)
    for boundary in ("zeros", "reflect", "periodic")
    for levels in (1, 2)
    for shape in [(64, 64), (85, 85), (421, 36), (64,), (85,), (16, 20, 24)]
    if boundary != "periodic" or not any(s % 2**levels for s in shape)
]


@pytest.mark.parametrize("boundary, levels, shape", ROUND_TRIPS)
def test_stitch_of_patch_is_identity(boundary, levels, shape):
    x = torch.randn(2, 3, *shape)
    mg = MultigridPatching(levels, 0.0625, boundary)
    patches = mg.patch(x)
    layout = mg.layout(shape)
    assert patches.shape == (2 * 2 ** (levels * len(shape)), 3 * (levels + 1), *layout.window)
    assert torch.equal(mg.unpatch(patches[:, :3], shape), x)


def test_coarse_channel_is_centred_on_its_patch():
    # A field equal to its row index: the level-1 window's central pixel of patch (i, j)
    # samples the patch centre to within one coarse pixel (2 fine pixels).
    n = 64
    x = torch.arange(n, dtype=torch.float32).reshape(1, 1, n, 1).expand(1, 1, n, n).contiguous()
    patches = MultigridPatching(1, 0.0625, "periodic").patch(x)
    centre = patches.shape[-1] // 2
    for i in range(2):
        value = patches[2 * i, 1, centre, centre]
        assert abs(float(value) - (i + 0.5) * n / 2) <= 2


def test_levels_zero_is_the_wrapped_tfno():
    torch.manual_seed(0)
    mg = get_model("mgtfno", levels=0, **SMALL)
    tfno = get_model("tfno", **SMALL)
    tfno.load_state_dict({k.removeprefix("tfno."): v for k, v in mg.state_dict().items()})
    x = torch.randn(2, 1, 85, 85)
    with torch.no_grad():
        assert torch.equal(mg(x), tfno(x))


@pytest.mark.parametrize(
    "levels, boundary, shape",
    [
        (1, "zeros", (85, 85)),
        (1, "zeros", (64, 64)),
        (2, "reflect", (65, 65)),
        (1, "periodic", (64, 48)),
    ],
)
def test_forward_shapes(levels, boundary, shape):
    model = get_model("mgtfno", levels=levels, boundary=boundary, out_channels=2, **SMALL)
    assert model.tfno.in_channels == levels + 1
    assert model(torch.randn(2, 1, *shape)).shape == (2, 2, *shape)


def test_1d_mgtfno():
    model = get_model("mgtfno", n_modes=(8,), hidden_channels=4, n_layers=1, levels=2)
    assert model(torch.randn(2, 1, 85)).shape == (2, 1, 85)


def test_bad_resolution_is_one_line():
    periodic = get_model("mgtfno", levels=1, boundary="periodic", **SMALL)
    with pytest.raises(ValueError) as excinfo:
        periodic(torch.randn(1, 1, 85, 85))
    assert "divisible by 2" in str(excinfo.value) and "\n" not in str(excinfo.value)
    tiny = get_model("mgtfno", levels=2, **SMALL)
    with pytest.raises(ValueError) as excinfo:
        tiny(torch.randn(1, 1, 12, 64))
    assert ">= 13" in str(excinfo.value)
    tiny.check_resolution((13, 64))


def test_wrong_in_channels_is_one_line():
    model = get_model("mgtfno", in_channels=1, levels=1, **SMALL)
    with pytest.raises(ValueError) as excinfo:
        model(torch.randn(1, 2, 64, 64))  # the inner TFNO takes 2 channels; the model takes 1
    assert "in_channels=1" in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_parameter_compression_against_dense_fno():
    dense = count_parameters(get_model("fno"))
    tfno = count_parameters(get_model("tfno"))
    mgtfno = count_parameters(get_model("mgtfno"))
    assert dense / tfno > 5 and dense / mgtfno > 5
    # MG-TFNO only adds the coarse channels to the lifting layer.
    assert 0 < mgtfno - tfno < 200
