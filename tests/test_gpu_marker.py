"""The ``gpu`` marker's guard (tests/conftest.py): without CUDA a gpu test skips and says why;
with CUDA it runs; tests without the marker are never touched. torch.cuda is faked both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")


class _Item:
    """The part of a pytest item the guard reads."""

    def __init__(self, *markers: str):
        self.markers = {name: getattr(pytest.mark, name).mark for name in markers}

    def get_closest_marker(self, name: str):
        return self.markers.get(name)


@pytest.fixture
def conftest(request):
    """tests/conftest.py as pytest loaded it."""
    plugins = request.config.pluginmanager.get_plugins()
    (module,) = [p for p in plugins if getattr(p, "__file__", None) == str(CONFTEST)]
    return module


@pytest.fixture
def guard(conftest):
    """tests/conftest.py's ``pytest_runtest_setup`` hook."""
    return conftest.pytest_runtest_setup


def test_wsvad_fake_cuda_makes_torch_report_one_gpu(conftest, monkeypatch, no_cuda):
    import torch

    monkeypatch.delenv("WSVAD_FAKE_CUDA", raising=False)
    conftest.pytest_configure(None)
    assert not torch.cuda.is_available()  # not asked for: untouched
    monkeypatch.setenv("WSVAD_FAKE_CUDA", "1")
    conftest.pytest_configure(None)  # no_cuda's monkeypatch restores the real functions after
    assert torch.cuda.is_available() and torch.cuda.device_count() == 1


def test_a_gpu_test_skips_with_its_reason_where_cuda_is_missing(guard, fake_cuda):
    import torch

    fake_cuda(0)
    with pytest.raises(pytest.skip.Exception) as skipped:
        guard(_Item("gpu"))
    assert str(skipped.value) == (
        f"gpu test: needs a CUDA device; torch {torch.__version__} (CUDA build "
        f"{torch.version.cuda or 'none'}) sees none. Run `make test-gpu` on a GPU machine"
    )
    guard(_Item("slow"))  # other tests run as before


def test_a_gpu_test_runs_where_cuda_is_there(guard, fake_cuda):
    fake_cuda(1)
    guard(_Item("gpu"))  # no skip


def test_make_test_gpu_selects_the_gpu_tests_and_shows_skip_reasons():
    makefile = (CONFTEST.parents[1] / "Makefile").read_text()
    assert "test-gpu: $(STAMP)\n\t$(BIN)/python -m pytest -q -rs -m gpu\n" in makefile
