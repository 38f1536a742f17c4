"""Bit-reproducible ``exp``, ``log`` and ``cos`` on float64 arrays, on every machine.

NumPy picks its transcendental kernels by CPU at import time: on a machine with AVX-512
``np.exp``/``np.log``/``np.cos`` run SIMD kernels whose last bit differs from the ones used
on an AVX2-only machine (measured: the default synthetic market hashed ``c39ccebee84f04c2``
with the AVX-512 kernels and ``81f96344d6bdf6a8`` with ``NPY_DISABLE_CPU_FEATURES="X86_V4"``).
A market generated from a seed, or a figure computed from it, must not depend on which
machine (or which Ray node) computed it, so the lab's generators use these functions.

They use only IEEE-754 basic operations (``+ - * /``, ``rint``, ``ldexp``, integer views),
each correctly rounded by the standard, in a fixed order, so the result is the same bits on
any conforming machine whatever SIMD width NumPy's loops use:

* :func:`exp` and :func:`log` are the fdlibm algorithms (``e_exp.c``, ``e_log.c``, Sun
  Microsystems 1993: argument reduction by ``ln 2`` split in two parts, then a minimax
  polynomial), vectorised with the same branches; error below 1 ulp (tests compare with the
  C library's ``math.exp``/``math.log``).
* :func:`cos` reduces by ``2 pi`` (split in two parts) and sums the Taylor series to the
  30th power by Horner's rule: absolute error about 1e-16 for arguments of moderate size
  (the synthetic volume profile), not a general-purpose cosine.

Inputs may be scalars or arrays of any shape; the output is a float64 array of that shape
(a 0-d array for a scalar; use ``float()`` for a Python float).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["cos", "exp", "log"]

# fdlibm constants (hexadecimal values in e_exp.c / e_log.c).
_LN2_HI = 6.93147180369123816490e-01  # 0x3fe62e42 0xfee00000: k * _LN2_HI exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10  # 0x3dea39ef 0x35793c76
_INV_LN2 = 1.44269504088896338700e00
_EXP_P1 = 1.66666666666666019037e-01
_EXP_P2 = -2.77777777770155933842e-03
_EXP_P3 = 6.61375632143793436117e-05
_EXP_P4 = -1.65339022054652515390e-06
_EXP_P5 = 4.13813679705723846039e-08
_EXP_OVERFLOW = 7.09782712893383973096e02  # above: +inf
_EXP_UNDERFLOW = -7.45133219101941108420e02  # below: 0

_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_TWO54 = 1.80143985094819840000e16

# 2 pi as a double plus the rounding remainder of that double.
_TWO_PI_HI = 6.283185307179586
_TWO_PI_LO = 2.4492935982947064e-16
_COS_TERMS = 15  # r^0 .. r^28 by Horner: |r| <= pi leaves a tail below 3e-17


def _float_array(x: ArrayLike) -> NDArray[np.float64]:
    return np.array(x, dtype=np.float64, copy=True)


def exp(x: ArrayLike) -> NDArray[np.float64]:
    """Return ``e**x`` element-wise (fdlibm ``__ieee754_exp``; module docstring)."""
    x = _float_array(x)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        k = np.rint(x * _INV_LN2)
        k = np.where(np.isfinite(k), k, 0.0)
        hi = x - k * _LN2_HI
        lo = k * _LN2_LO
        r = hi - lo
        t = r * r
        c = r - t * (_EXP_P1 + t * (_EXP_P2 + t * (_EXP_P3 + t * (_EXP_P4 + t * _EXP_P5))))
        y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
        # ldexp in two steps so that k = 1024 (y < 1) and deep underflow scale exactly.
        ki = k.astype(np.int64)
        half = ki // 2
        out = np.ldexp(np.ldexp(y, half), ki - half)
        out = np.where(x > _EXP_OVERFLOW, np.inf, out)
        out = np.where(x < _EXP_UNDERFLOW, 0.0, out)
        out = np.where(np.isnan(x), np.nan, out)
    return np.asarray(out, dtype=np.float64)


def log(x: ArrayLike) -> NDArray[np.float64]:
    """Return the natural logarithm element-wise (fdlibm ``__ieee754_log``; module docstring).

    ``log(0)`` is ``-inf``, ``log`` of a negative number or NaN is NaN, ``log(inf)`` is ``inf``.
    """
    x = _float_array(x)
    regular = np.isfinite(x) & (x > 0.0)
    z = np.where(regular, x, 1.0)
    subnormal = z < 2.2250738585072014e-308
    z = np.where(subnormal, z, 0.0) * _TWO54 + np.where(subnormal, 0.0, z)
    bits = z.view(np.int64)
    hx = (bits >> 32).astype(np.int64)
    k = (hx >> 20) - 1023 - np.where(subnormal, 54, 0)
    hx = hx & 0x000FFFFF
    i = (hx + 0x95F64) & 0x100000
    # Normalise z into [sqrt(2)/2, sqrt(2)): set its exponent to 0 or -1.
    high = hx | (i ^ 0x3FF00000)
    normal_bits = (high << 32) | (bits & 0xFFFFFFFF)
    z = normal_bits.view(np.float64)
    k = k + (i >> 20)
    f = z - 1.0
    dk = k.astype(np.float64)

    # |f| < 2^-20: a short series.
    tiny = (0x000FFFFF & (2 + hx)) < 3
    r_tiny = f * f * (0.5 - 0.33333333333333333 * f)
    tiny_value = np.where(
        f == 0.0,
        dk * _LN2_HI + dk * _LN2_LO,
        np.where(k == 0, f - r_tiny, dk * _LN2_HI - ((r_tiny - dk * _LN2_LO) - f)),
    )

    s = f / (2.0 + f)
    s2 = s * s
    w = s2 * s2
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = s2 * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    big = ((hx - 0x6147A) | (0x6B851 - hx)) > 0
    r = t2 + t1
    hfsq = 0.5 * f * f
    with_hfsq = np.where(
        k == 0,
        f - (hfsq - s * (hfsq + r)),
        dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f),
    )
    without = np.where(k == 0, f - s * (f - r), dk * _LN2_HI - ((s * (f - r) - dk * _LN2_LO) - f))
    out = np.where(tiny, tiny_value, np.where(big, with_hfsq, without))
    out = np.where(regular, out, np.nan)
    out = np.where(x == 0.0, -np.inf, out)
    out = np.where(x == np.inf, np.inf, out)
    return np.asarray(out, dtype=np.float64)


def cos(x: ArrayLike) -> NDArray[np.float64]:
    """Return ``cos(x)`` element-wise for moderate ``|x|`` (module docstring)."""
    x = _float_array(x)
    with np.errstate(invalid="ignore"):
        k = np.rint(x / _TWO_PI_HI)
        r = (x - k * _TWO_PI_HI) - k * _TWO_PI_LO
        r2 = r * r
        # sum_{j=0}^{14} (-1)^j r^(2j) / (2j)! by Horner from the highest term.
        total = np.zeros_like(r2)
        for j in range(_COS_TERMS - 1, -1, -1):
            coefficient = (-1) ** j / math.factorial(2 * j)  # int / int: correctly rounded
            total = coefficient + r2 * total
    return np.asarray(np.where(np.isfinite(x), total, np.nan), dtype=np.float64)
