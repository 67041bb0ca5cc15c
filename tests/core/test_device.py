"""pdekit.core.device: one device rule, checked against monkeypatched availability."""

import pytest
import torch

from pdekit.core import device as device_mod
from pdekit.core.device import available_devices, resolve_device
from pdekit.errors import PdekitUserError


@pytest.fixture
def machine(monkeypatch):
    """Pretend the machine has ``n_cuda`` CUDA devices and (or not) MPS."""

    def set_up(n_cuda=0, mps=False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n_cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n_cuda)
        monkeypatch.setattr(device_mod, "_mps_available", lambda: mps)

    return set_up


def test_cpu_only_machine(machine):
    machine(n_cuda=0)
    assert available_devices() == ["cpu"]
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_names_accepted_when_present(machine, name):
    machine(n_cuda=2)
    got = resolve_device(name)
    assert got == torch.device(name) and got.type == "cuda"
    assert resolve_device(torch.device(name)) == torch.device(name)


def test_mps_accepted_when_present(machine):
    machine(mps=True)
    assert available_devices() == ["cpu", "mps"]
    assert resolve_device("mps") == torch.device("mps")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "mps"])
def test_unavailable_device_names_the_argument_and_lists_what_is_there(machine, name):
    machine(n_cuda=0, mps=False)
    with pytest.raises(PdekitUserError) as err:
        resolve_device(name, argument="solver.device")
    msg = str(err.value)
    assert msg.startswith("solver.device: ") and "\n" not in msg
    assert f"{name!r} is not available" in msg and "available: cpu)" in msg


def test_cuda_index_beyond_the_count_fails(machine):
    machine(n_cuda=2)
    with pytest.raises(PdekitUserError, match=r"'cuda:2' is not available .*cuda:0, cuda:1"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("value", ["tpu", "CPU", "cuda:", "cuda:x", "", "accelerator"])
def test_unknown_names_fail_with_the_accepted_list(machine, value):
    machine(n_cuda=1)
    with pytest.raises(PdekitUserError, match=r"^device: expected cpu, cuda, cuda:N or mps, got"):
        resolve_device(value)


@pytest.mark.parametrize("value", [0, 1.5, ["cpu"]])
def test_non_string_values_fail(machine, value):
    machine()
    with pytest.raises(PdekitUserError, match="^gen: expected a device name"):
        resolve_device(value, argument="gen")


def test_error_is_a_value_error(machine):
    machine()
    with pytest.raises(ValueError):
        resolve_device("cuda")
