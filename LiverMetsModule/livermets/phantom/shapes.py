"""Solid shapes of the phantom, defined in world RAS millimetres.

Every shape has an axis-aligned bounding box ``bbox_ras`` (``(low, high)``, each (3,) mm)
and ``inside(x, y, z)`` taking three mutually broadcastable coordinate arrays (RAS mm)
and returning a boolean array of their broadcast shape. Shapes that are also used as
smooth implicit surfaces offer ``field(x, y, z)``: negative inside, and at most the
Euclidean distance to the surface in magnitude (1-Lipschitz), so ``field < -m`` means
"at least ``m`` mm inside".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BBox = tuple[np.ndarray, np.ndarray]


def _box(low: Sequence[float], high: Sequence[float]) -> BBox:
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


def smooth_min(a: np.ndarray, b: np.ndarray, k_mm: float) -> np.ndarray:
    """Polynomial smooth minimum (blend width ``k_mm``); a convex blend, so 1-Lipschitz inputs stay so."""
    h = np.clip(0.5 + 0.5 * (b - a) / k_mm, 0.0, 1.0)
    return b + (a - b) * h - k_mm * h * (1.0 - h)


def smooth_max(a: np.ndarray, b: np.ndarray, k_mm: float) -> np.ndarray:
    return -smooth_min(-a, -b, k_mm)


class Ellipsoid:
    """Axis-aligned ellipsoid; ``field`` is ``(|q| - 1) * min(radii)`` with ``q`` the scaled offset."""

    def __init__(self, center: Sequence[float], radii: Sequence[float]) -> None:
        self.center = np.asarray(center, dtype=float)
        self.radii = np.asarray(radii, dtype=float)
        self.bbox_ras = _box(self.center - self.radii, self.center + self.radii)

    def _q2(self, x, y, z):
        c, r = self.center, self.radii
        return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2

    def inside(self, x, y, z) -> np.ndarray:
        return self._q2(x, y, z) <= 1.0

    def field(self, x, y, z) -> np.ndarray:
        return (np.sqrt(self._q2(x, y, z)) - 1.0) * float(self.radii.min())


class TaperedEllipsoid(Ellipsoid):
    """Ellipsoid whose A-P and S-I radii shrink linearly toward the patient's left (RAS -x).

    At ``x = center_x - radius_x`` the A-P/S-I radii are multiplied by ``tip_scale``.
    """

    def __init__(self, center: Sequence[float], radii: Sequence[float], tip_scale: float) -> None:
        super().__init__(center, radii)
        self.tip_scale = float(tip_scale)

    def _scale(self, x):
        t = np.clip((self.center[0] - x) / self.radii[0], 0.0, 1.0)
        return 1.0 - (1.0 - self.tip_scale) * t

    def _q2(self, x, y, z):
        c, r = self.center, self.radii
        s = self._scale(x)
        return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / (r[1] * s)) ** 2 + ((z - c[2]) / (r[2] * s)) ** 2

    def field(self, x, y, z) -> np.ndarray:
        return (np.sqrt(self._q2(x, y, z)) - 1.0) * float(self.radii.min()) * self.tip_scale


class EllipticCylinder:
    """Cylinder along S-I: ellipse ``(x, y)`` centre and half-axes, from ``z_low`` to ``z_high`` mm."""

    def __init__(self, center_xy: Sequence[float], radii_xy: Sequence[float],
                 z_low: float, z_high: float) -> None:
        self.center = np.asarray(center_xy, dtype=float)
        self.radii = np.asarray(radii_xy, dtype=float)
        self.z_low, self.z_high = float(z_low), float(z_high)
        self.bbox_ras = _box([*(self.center - self.radii), z_low], [*(self.center + self.radii), z_high])

    def inside(self, x, y, z) -> np.ndarray:
        c, r = self.center, self.radii
        in_ellipse = (((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2) <= 1.0
        return in_ellipse & (z >= self.z_low) & (z <= self.z_high)


class Capsule:
    """A tube segment from ``p0`` (radius ``r0``) to ``p1`` (radius ``r1``): a swept sphere, radii in mm."""

    def __init__(self, p0: Sequence[float], p1: Sequence[float], r0: float, r1: float) -> None:
        self.p0 = np.asarray(p0, dtype=float)
        self.p1 = np.asarray(p1, dtype=float)
        self.r0, self.r1 = float(r0), float(r1)
        rmax = max(self.r0, self.r1)
        self.bbox_ras = _box(np.minimum(self.p0, self.p1) - rmax, np.maximum(self.p0, self.p1) + rmax)
        d = self.p1 - self.p0
        self._d = d
        self._dd = float(d @ d) or 1e-12

    def inside(self, x, y, z) -> np.ndarray:
        p0, d = self.p0, self._d
        dx, dy, dz = x - p0[0], y - p0[1], z - p0[2]
        t = np.clip((dx * d[0] + dy * d[1] + dz * d[2]) / self._dd, 0.0, 1.0)
        ex, ey, ez = dx - t * d[0], dy - t * d[1], dz - t * d[2]
        radius = self.r0 + t * (self.r1 - self.r0)
        return ex * ex + ey * ey + ez * ez <= radius * radius


class Lesion:
    """A sphere of radius ``radius_mm`` whose surface radius is modulated by low-order harmonics.

    ``r(u) = R * (1 + sum_n c_n * b_n(u))`` with ``b_n`` real polynomials of the unit direction ``u``
    of degree 2 and 3 (bounded by 1 in magnitude), i.e. low-order spherical harmonics.
    With ``core_fraction`` < 1 the points inside ``core_fraction * r(u)`` form the core
    (see :meth:`in_core`); the rest is the rim.
    """

    N_COEFFS = 8

    def __init__(self, center: Sequence[float], radius_mm: float, coeffs: Sequence[float],
                 core_fraction: float = 1.0) -> None:
        self.center = np.asarray(center, dtype=float)
        self.radius_mm = float(radius_mm)
        self.coeffs = np.asarray(coeffs, dtype=float)
        if self.coeffs.shape != (self.N_COEFFS,):
            raise ValueError(f"a lesion needs {self.N_COEFFS} shape coefficients")
        self.core_fraction = float(core_fraction)
        self.max_radius_mm = self.radius_mm * (1.0 + float(np.abs(self.coeffs).sum()))
        self.bbox_ras = _box(self.center - self.max_radius_mm, self.center + self.max_radius_mm)

    @staticmethod
    def basis(ux, uy, uz) -> list:
        return [ux * uy * 2.0, uy * uz * 2.0, ux * uz * 2.0, ux * ux - uy * uy, (3.0 * uz * uz - 1.0) / 2.0,
                ux * uy * uz * 3.0 ** 1.5, ux * (ux * ux - 3.0 * uy * uy), uz * (5.0 * uz * uz - 3.0) / 2.0]

    def surface_radius(self, ux, uy, uz) -> np.ndarray:
        """Surface radius (mm) along unit directions ``u``."""
        total = 1.0
        for c, b in zip(self.coeffs, self.basis(ux, uy, uz)):
            total = total + c * b
        return self.radius_mm * total

    def _radial(self, x, y, z):
        dx, dy, dz = x - self.center[0], y - self.center[1], z - self.center[2]
        rho = np.sqrt(dx * dx + dy * dy + dz * dz)
        inv = 1.0 / np.maximum(rho, 1e-6)
        return rho, self.surface_radius(dx * inv, dy * inv, dz * inv)

    def inside(self, x, y, z) -> np.ndarray:
        rho, surface = self._radial(x, y, z)
        return rho <= surface

    def in_core(self, x, y, z) -> np.ndarray:
        rho, surface = self._radial(x, y, z)
        return rho <= self.core_fraction * surface

    def surface_points(self, directions: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Points (n, 3) RAS mm at ``scale`` times the surface radius along unit ``directions`` (n, 3)."""
        r = self.surface_radius(directions[:, 0], directions[:, 1], directions[:, 2])
        return self.center + directions * (scale * r)[:, None]

    def volume_ml(self, directions: np.ndarray) -> float:
        """Analytic volume ``(4 pi / 3) * mean(r(u)^3)`` over uniformly spread unit ``directions``."""
        r = self.surface_radius(directions[:, 0], directions[:, 1], directions[:, 2])
        return float(4.0 * np.pi / 3.0 * np.mean(r ** 3)) / 1000.0


class LesionCore:
    """The core of a rim-enhancing :class:`Lesion` as a shape of its own."""

    def __init__(self, lesion: Lesion) -> None:
        self.lesion = lesion
        self.bbox_ras = lesion.bbox_ras

    def inside(self, x, y, z) -> np.ndarray:
        return self.lesion.in_core(x, y, z)


class Carved:
    """``shape`` minus everything within ``margin_mm`` of the inside of ``cutter`` (which has ``field``)."""

    def __init__(self, shape, cutter, margin_mm: float) -> None:
        self.shape, self.cutter, self.margin_mm = shape, cutter, float(margin_mm)
        self.bbox_ras = shape.bbox_ras

    def inside(self, x, y, z) -> np.ndarray:
        inside = self.shape.inside(x, y, z)
        return inside & (self.cutter.field(x, y, z) > self.margin_mm)


class Ribs:
    """Rib bands inside an elliptic body-wall ring, sloping down anteriorly.

    ``levels_z_mm`` are the heights of the ribs at the back; ribs are ``thickness_mm`` thick
    (S-I), lie between elliptic radii ``inner`` and ``outer`` (fractions of ``radii_xy``), and stop
    ``gap_mm`` either side of the anterior midline.
    """

    def __init__(self, radii_xy: Sequence[float], levels_z_mm: Sequence[float], *, inner: float = 0.93,
                 outer: float = 0.99, thickness_mm: float = 9.0, drop_mm: float = 80.0,
                 gap_mm: float = 45.0) -> None:
        self.radii = np.asarray(radii_xy, dtype=float)
        self.levels = np.asarray(levels_z_mm, dtype=float)
        self.inner, self.outer = inner, outer
        self.half_thickness = thickness_mm / 2.0
        self.drop_mm, self.gap_mm = drop_mm, gap_mm
        z_low = float(self.levels.min() - drop_mm - thickness_mm)
        z_high = float(self.levels.max() + thickness_mm)
        self.bbox_ras = _box([-self.radii[0], -self.radii[1], z_low], [self.radii[0], self.radii[1], z_high])

    def inside(self, x, y, z) -> np.ndarray:
        rho2 = (x / self.radii[0]) ** 2 + (y / self.radii[1]) ** 2
        ring = (rho2 >= self.inner ** 2) & (rho2 <= self.outer ** 2) & ((np.abs(x) > self.gap_mm) | (y < 0))
        anterior = np.clip(0.5 + 0.5 * y / self.radii[1], 0.0, 1.0)  # 0 at the back, 1 at the front
        height = z + self.drop_mm * anterior
        near = np.zeros(np.broadcast(x, y, z).shape, dtype=bool)
        for level in self.levels:
            near |= np.abs(height - level) <= self.half_thickness
        return ring & near


def fibonacci_directions(n: int) -> np.ndarray:
    """``n`` nearly uniformly spread unit vectors (n, 3) on the sphere (golden-angle spiral)."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    phi = np.pi * (1.0 + 5.0 ** 0.5) * k
    rho = np.sqrt(1.0 - z * z)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1)


def capsule_distance_mm(points: np.ndarray, p0: np.ndarray, p1: np.ndarray, r0: np.ndarray,
                        r1: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Signed distance (mm, approximate for tapered tubes) from ``points`` (n, 3) to the union of
    capsules ``p0[s] -> p1[s]`` with radii ``r0[s] -> r1[s]``; negative inside a tube."""
    points = np.asarray(points, dtype=float)
    out = np.full(len(points), np.inf)
    if len(p0) == 0:
        return out
    d = p1 - p0
    dd = np.maximum((d * d).sum(1), 1e-12)
    for start in range(0, len(points), chunk):
        p = points[start:start + chunk, None, :] - p0[None]
        t = np.clip((p * d[None]).sum(2) / dd[None], 0.0, 1.0)
        e = p - t[..., None] * d[None]
        dist = np.sqrt((e * e).sum(2)) - (r0[None] + t * (r1 - r0)[None])
        out[start:start + chunk] = dist.min(1)
    return out

