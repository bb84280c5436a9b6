"""Shared fixtures: where the reference data lives, and the golden SEEM variants.

Reference data sits beside the checkout in ``../shared`` (``SEEM_VOS_SHARED``
overrides it; ``SEEM_GOLDEN_DIR`` overrides the golden folder alone). A fresh
clone without it skips those tests with the reason; under ``CI=true`` a missing
folder is a failure, because CI must prove parity.
"""
from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("SEEM_VOS_SHARED", ROOT.parent / "shared"))
GOLDEN_DIR = Path(os.environ.get("SEEM_GOLDEN_DIR", SHARED_DIR / "golden"))
DATA_DIR = SHARED_DIR / "data"

# Golden tensors: the tolerance the golden README suggests for a float32 re-implementation.
GOLDEN_ATOL = 1e-4
GOLDEN_RTOL = 1e-4


def pytest_configure(config: pytest.Config) -> None:
    """Keep caches the code writes (class-embedding tables) out of the user's home during tests."""
    if "SEEM_VOS_CACHE" not in os.environ:
        os.environ["SEEM_VOS_CACHE"] = tempfile.mkdtemp(prefix="seem-vos-test-cache-")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_path(path: Path, what: str) -> Path:
    """Return ``path`` if it exists; otherwise skip (fresh clone) or fail (CI)."""
    if path.exists():
        return path
    message = (
        f"{what} not found at {path}: these tests need the shared reference data "
        "beside the checkout (../shared)"
    )
    if in_ci():
        pytest.fail(message + " and CI=true requires it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def davis_root() -> Path:
    """The DAVIS-2016 val subset in DAVIS-2017 layout."""
    return require_path(DATA_DIR / "davis2016", "DAVIS data")


@pytest.fixture(scope="session")
def predictions_dir() -> Path:
    """Folder of prediction sets, each with the official toolkit's reference numbers."""
    return require_path(DATA_DIR / "predictions", "DAVIS reference predictions")


def load_normal_tensors(path: Path) -> dict[str, Any]:
    """A tensor file loaded outside inference mode: these dicts are cached for the session and first
    read wherever a test happens to be (an inference-mode test would make them unusable with autograd)."""
    import torch

    with torch.inference_mode(False):
        return torch.load(path, map_location="cpu", weights_only=True)


class GoldenVariant:
    """One ``tiny_*`` folder of reference data from the official SEEM code."""

    def __init__(self, path: Path):
        self.path = path
        self.name = path.name

    @functools.cached_property
    def config(self):
        from seem_core.config import load_config

        return load_config(self.path / "config.yaml")

    @functools.cached_property
    def meta(self) -> dict[str, Any]:
        """``meta.json``: the texts and seeds of the recorded run (they differ between variants)."""
        return json.loads((self.path / "meta.json").read_text())

    @functools.cached_property
    def state_dict(self) -> dict[str, Any]:
        return load_normal_tensors(self.path / "state_dict.pt")

    @functools.cached_property
    def io(self) -> dict[str, Any]:
        return load_normal_tensors(self.path / "io.pt")

    @functools.cached_property
    def io_prompts(self) -> dict[str, Any]:
        """``io_prompts.pt``: the image demo's text and stroke calls (README_prompts.md), where recorded."""
        return load_normal_tensors(self.path / "io_prompts.pt")

    def state_dict_of(self, prefix: str) -> dict[str, Any]:
        """The sub-dict under ``prefix`` (e.g. ``"backbone."``), prefix stripped."""
        return {k[len(prefix):]: v for k, v in self.state_dict.items() if k.startswith(prefix)}

    def __repr__(self) -> str:
        return f"GoldenVariant({self.name})"


def golden_variant_dirs() -> list[Path]:
    if not GOLDEN_DIR.is_dir():
        return []
    return sorted(p for p in GOLDEN_DIR.glob("tiny_*") if (p / "config.yaml").is_file())


@functools.lru_cache(maxsize=None)
def _variant(path: Path) -> GoldenVariant:
    # One object per folder for the whole session, so tensors load once.
    return GoldenVariant(path)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``golden_variant`` over every ``tiny_*`` folder found, ids = folder names."""
    if "golden_variant" not in metafunc.fixturenames:
        return
    dirs = golden_variant_dirs()
    if dirs:
        metafunc.parametrize("golden_variant", dirs, ids=[d.name for d in dirs], indirect=True)
    else:
        metafunc.parametrize("golden_variant", [None], ids=["no-golden-data"], indirect=True)


@pytest.fixture
def golden_variant(request: pytest.FixtureRequest) -> GoldenVariant:
    if request.param is None:
        require_path(GOLDEN_DIR / "tiny_*", "golden SEEM variants (tiny_*)")
    return _variant(request.param)


@pytest.fixture
def model(golden_variant: GoldenVariant):
    """The variant's model, built from its official config with its official weights (strict)."""
    from seem_core.checkpoint import load_checkpoint
    from seem_core.model import build_model

    model = build_model(golden_variant.path / "config.yaml")
    load_checkpoint(model, golden_variant.path / "state_dict.pt", strict=True)
    return model


def assert_close(actual, expected, name: str, atol: float = GOLDEN_ATOL, rtol: float = GOLDEN_RTOL) -> None:
    """Compare one tensor with its golden value, naming it and the worst element on failure."""
    import torch

    actual = torch.as_tensor(actual).detach().cpu()
    expected = torch.as_tensor(expected).detach().cpu()
    assert tuple(actual.shape) == tuple(expected.shape), (
        f"{name}: shape {tuple(actual.shape)} != golden {tuple(expected.shape)}"
    )
    if expected.dtype == torch.bool or not expected.is_floating_point():
        mismatches = int((actual.to(expected.dtype) != expected).sum())
        assert mismatches == 0, f"{name}: {mismatches} of {expected.numel()} elements differ"
        return
    diff = (actual.double() - expected.double()).abs()
    bound = atol + rtol * expected.double().abs()
    bad = diff > bound
    if bad.any():
        worst = int(torch.argmax(diff - bound))
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {expected.numel()} elements out of tolerance "
            f"(atol={atol}, rtol={rtol}); max abs diff {float(diff.max()):.3e}, "
            f"worst at flat index {worst}: {float(actual.flatten()[worst]):.6g} vs "
            f"golden {float(expected.flatten()[worst]):.6g}"
        )


# Recorded diagnostics, not outputs: counts of pixels whose final logit is within 1e-6, 1e-5
# or 1e-4 of zero (golden README 7.4/9). They count float noise around the threshold, so an
# implementation that agrees to 1e-6 can legitimately differ by a pixel; the masks they
# describe are compared (away from the threshold) instead.
DIAGNOSTIC_SUFFIXES = (".n_abs_logit_lt_1e-6", ".n_abs_logit_lt_1e-5", ".n_abs_logit_lt_1e-4")


def is_diagnostic(key: str) -> bool:
    return key.endswith(DIAGNOSTIC_SUFFIXES)


def compare_stage(variant: GoldenVariant, prefix: str, produced: dict[str, Any],
                  recorded: dict[str, Any] | None = None, **tolerance) -> None:
    """Compare every golden tensor whose key starts with ``prefix`` against ``produced``.

    ``produced`` maps the key suffix (after ``prefix``) to our tensor; ``recorded``
    is the golden file's tensors (default: the variant's ``io.pt``). The golden
    keys under ``prefix`` (diagnostic counts aside) and the produced keys must be
    the same set, so a stored tensor of an implemented stage cannot go uncompared.
    """
    recorded = variant.io if recorded is None else recorded
    expected = {k[len(prefix):]: v for k, v in recorded.items() if k.startswith(prefix) and not is_diagnostic(k)}
    assert expected, f"{variant.name}: no golden tensor under {prefix!r}"
    missing = sorted(set(expected) - set(produced))
    extra = sorted(set(produced) - set(expected))
    assert not missing, f"{variant.name}: golden tensors under {prefix!r} not compared: {missing}"
    assert not extra, f"{variant.name}: produced tensors with no golden value under {prefix!r}: {extra}"
    for suffix, value in expected.items():
        assert_close(produced[suffix], value, f"{variant.name}:{prefix}{suffix}", **tolerance)
