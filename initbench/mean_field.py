"""Mean-field depth scales of deep fully connected nets (Schoenholz, Gilmer, Ganguli and
Sohl-Dickstein 2017, "Deep information propagation"), by Gauss-Hermite quadrature: q*, chi_1,
c*, xi_c, the critical sigma_w^2. Pure NumPy; `initbench.phase` documents the formulas and
trains the nets they are compared with."""

from __future__ import annotations

import functools
import math

import numpy as np

from initbench.errors import InitbenchError

NUM_QUADRATURE = 81  # Gauss-Hermite points (one dimension)
NUM_QUADRATURE_2D = 51  # per dimension of the two-dimensional expectations
THEORY_ACTIVATIONS = ("tanh", "relu")


# ---------------------------------------------------------------- mean-field theory


def _gauss(num: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of E[f(z)], z ~ N(0, 1) (`num` points, default NUM_QUADRATURE)."""
    z, w = np.polynomial.hermite_e.hermegauss(num or NUM_QUADRATURE)
    return z, w / math.sqrt(2 * math.pi)


def _phi(activation: str):
    if activation == "tanh":
        return np.tanh, lambda x: 1.0 / np.cosh(x) ** 2
    if activation == "relu":
        return lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)
    raise InitbenchError(f"mean-field depth scales are computed for "
                         f"{', '.join(THEORY_ACTIVATIONS)}, not {activation}.")


@functools.lru_cache(maxsize=4096)
def q_star(activation: str, sigma_w2: float, sigma_b2: float) -> float:
    """The variance fixed point q* (inf where the variance grows without bound: ReLU with
    sigma_w^2 >= 2)."""
    if activation == "relu":
        return sigma_b2 / (1 - sigma_w2 / 2) if sigma_w2 < 2 else math.inf
    phi, _ = _phi(activation)
    z, w = _gauss()
    q = 1.0
    for _ in range(2000):
        new = sigma_w2 * float(np.sum(w * phi(math.sqrt(q) * z) ** 2)) + sigma_b2
        if abs(new - q) < 1e-12:
            return new
        q = new
    return q


def chi_1(activation: str, sigma_w2: float, sigma_b2: float) -> float:
    """chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]."""
    if activation == "relu":
        return sigma_w2 / 2
    _, dphi = _phi(activation)
    z, w = _gauss()
    q = q_star(activation, sigma_w2, sigma_b2)
    return sigma_w2 * float(np.sum(w * dphi(math.sqrt(q) * z) ** 2))


@functools.lru_cache(maxsize=4096)
def c_star(activation: str, sigma_w2: float, sigma_b2: float) -> float:
    """The stable fixed point of the correlation map: 1 in the ordered phase (chi_1 <= 1),
    else iterated from c = 0.5."""
    if activation == "relu" or chi_1(activation, sigma_w2, sigma_b2) <= 1.0:
        return 1.0
    phi, _ = _phi(activation)
    z, w = _gauss(NUM_QUADRATURE_2D)
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    weights = np.outer(w, w)
    q = q_star(activation, sigma_w2, sigma_b2)
    c = 0.5
    u1 = math.sqrt(q) * z1
    phi1 = weights * phi(u1)
    for _ in range(3000):
        u2 = math.sqrt(q) * (c * z1 + math.sqrt(max(1 - c * c, 0.0)) * z2)
        new = min((sigma_w2 * float(np.sum(phi1 * phi(u2))) + sigma_b2) / q, 1.0)
        if abs(new - c) < 1e-10:
            return new
        c = new
    return c


def xi_c(activation: str, sigma_w2: float, sigma_b2: float) -> float:
    """The correlation depth scale xi_c = -1/ln(chi_c) (inf on the critical line); for ReLU
    1/|ln(sigma_w^2/2)| (see the module docstring)."""
    if activation == "relu":
        chi = sigma_w2 / 2
        return math.inf if chi == 1 else 1.0 / abs(math.log(chi))
    c = c_star(activation, sigma_w2, sigma_b2)
    if c == 1.0:
        chi = chi_1(activation, sigma_w2, sigma_b2)
    else:
        _, dphi = _phi(activation)
        z, w = _gauss(NUM_QUADRATURE_2D)
        z1, z2 = np.meshgrid(z, z, indexing="ij")
        q = q_star(activation, sigma_w2, sigma_b2)
        u1 = math.sqrt(q) * z1
        u2 = math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
        chi = sigma_w2 * float(np.sum(np.outer(w, w) * dphi(u1) * dphi(u2)))
    if chi >= 1.0 or chi <= 0.0:
        return math.inf if chi == 1.0 or chi > 0.999999 else 0.0
    return -1.0 / math.log(chi)


def critical_sigma_w2(activation: str, sigma_b2: float) -> float:
    """sigma_w^2 where chi_1 = 1 (bisection over [0.1, 10]; 2 for ReLU)."""
    if activation == "relu":
        return 2.0
    low, high = 0.1, 10.0
    for _ in range(60):
        mid = (low + high) / 2
        if chi_1(activation, mid, sigma_b2) < 1:
            low = mid
        else:
            high = mid
    return (low + high) / 2
