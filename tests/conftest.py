import importlib.util
import sys
from pathlib import Path

import pytest
import torch

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def one_thread():
    """One torch intra-op thread for the test (the machine is shared), restored afterwards.

    Use it with ``pytestmark = pytest.mark.usefixtures("one_thread")`` or as an argument.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


@pytest.fixture(scope="module")
def load_experiment():
    """``load("bench_recycling")``: import ``experiments/bench_recycling.py`` as a module.

    The scripts' sibling helper ``experiments/_common.py`` is registered first as ``_common``,
    as ``python experiments/<script>.py`` would find it; both leave ``sys.modules`` at the end of
    the test module.
    """
    loaded = []

    def load(name: str):
        for module in ("_common", name):
            _load_module(module, EXPERIMENTS / f"{module}.py")
            loaded.append(module)
        return sys.modules[name]

    yield load
    for name in loaded:
        sys.modules.pop(name, None)
