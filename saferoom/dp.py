"""The one module that touches OpenDP: discrete noise calibrated exactly, measurements cached.

`contrib` is enabled here, once; `floating-point` and `honest-but-curious` never are.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import opendp.prelude as dp  # noqa: TID251 (this is the one DP module)

Mechanism = Literal["discrete_laplace", "discrete_gaussian"]
_FEATURES = ("contrib",)
_enabled = threading.Lock()


def enable() -> None:
    """Turn on the OpenDP features this module needs; called once at start."""
    with _enabled:
        dp.enable_features(*_FEATURES)
    # Both would void the guarantees (float-based samplers; unchecked user constructors).
    dp.assert_features(*_FEATURES)
    for forbidden in ("floating-point", "honest-but-curious"):
        if forbidden in _active_features():
            raise RuntimeError(f"OpenDP feature {forbidden} must never be enabled")


def _active_features() -> set[str]:
    from opendp.mod import GLOBAL_FEATURES  # noqa: TID251

    return set(GLOBAL_FEATURES)


@dataclass(frozen=True)
class NoiseSpec:
    """Integer noise for a vector of integer cells with a given L1 (or L2) sensitivity."""

    mechanism: Mechanism
    sensitivity: int
    scale: float


def laplace_for(sensitivity: int, epsilon: float) -> NoiseSpec:
    """Pure ε-DP: discrete Laplace with scale = sensitivity / ε (exact, no search)."""
    return NoiseSpec("discrete_laplace", sensitivity, sensitivity / epsilon)


def gaussian_for(sensitivity: int, rho: float) -> NoiseSpec:
    """ρ-zCDP: discrete Gaussian with σ = sensitivity / sqrt(2ρ)."""
    return NoiseSpec("discrete_gaussian", sensitivity, sensitivity / math.sqrt(2 * rho))


@lru_cache(maxsize=512)
def _measurement(mechanism: Mechanism, scale: float) -> Any:
    domain = dp.vector_domain(dp.atom_domain(T="i64"))
    if mechanism == "discrete_laplace":
        return dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=scale)
    return dp.m.make_gaussian(domain, dp.l2_distance(T="i64"), scale=scale)


def privacy_loss(spec: NoiseSpec) -> float:
    """What OpenDP certifies for this noise at this sensitivity (ε, or ρ for Gaussian)."""
    return float(_measurement(spec.mechanism, spec.scale).map(spec.sensitivity))


def add_noise(spec: NoiseSpec, cells: Sequence[int]) -> list[int]:
    """Release `cells` with OpenDP's sampler; the input never leaves without it."""
    if not cells:
        return []
    return list(_measurement(spec.mechanism, spec.scale)([int(c) for c in cells]))


def ci95_halfwidth(spec: NoiseSpec) -> float:
    """Half-width t of the 95% interval of the noise, |X| <= t with probability >= 0.95."""
    if spec.scale == 0:
        return 0.0
    if spec.mechanism == "discrete_laplace":
        # P(|X| > t) = 2 e^{-(t+1)/b} / (1 + e^{-1/b}) for integer t and scale b.
        b = spec.scale
        t = b * math.log(2 / (0.05 * (1 + math.exp(-1 / b)))) - 1
        return float(max(0, math.ceil(t)))
    return 1.96 * spec.scale  # the discrete Gaussian is within a hair of the continuous one
