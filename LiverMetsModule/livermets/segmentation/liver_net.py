"""Liver probability from a small 2.5D U-Net evaluated with numpy (no deep-learning package).

The network (Ronneberger et al. 2015, doi:10.1007/978-3-319-24574-4_28) sees one axial plane and
:data:`NEIGHBOURS` planes above and below it, :data:`NEIGHBOUR_MM` apart (the image's first and
last slices are repeated beyond its ends, so a liver cut by the field of view stays a liver),
resampled onto a *canonical grid*: axes along
LPS (columns run to the patient's left, rows to posterior, planes to superior), :data:`IN_PLANE_MM`
pixels. Its input is contrast-free: intensities are expressed relative to the liver's own level
(``(value - liver_level) / spread``, found by the intensity model of
:mod:`livermets.segmentation.liver`), and it was trained with both signs of that contrast, so the
same weights serve T2 (liver darker than spleen and kidneys) and hepatobiliary or portal-venous
images (liver brighter). It learns what intensity alone cannot give: the organ's shape and its
place among its neighbours.

The weights (``liver_net.npz`` beside this file) are those of two networks trained alike for 3000
steps from two seeds, whose probabilities are averaged: on CHAOS livers they never saw, 3000 steps
did better than 1500 and the pair better than either alone. ``liver_net.json`` describes them and
how they scored; ``Testing/train_liver_net.py`` reproduces them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

import numpy as np
import SimpleITK as sitk

from livermets.errors import LiverMetsError
from livermets.geometry import Geometry

NEIGHBOUR_MM = 7.5   # distance between the planes given to the network (mm)
NEIGHBOURS = 2       # planes given above and below the one segmented
IN_PLANE_MM = 2.0    # pixel size of the canonical grid (mm)
MIN_SLICE_MM = 2.0   # finest plane spacing of the canonical grid (mm)
CLIP_Z = 8.0         # input values beyond +-8 spreads carry no more information
WEIGHTS = Path(__file__).with_name("liver_net.npz")
BATCH_PLANES = 8     # planes per forward pass (bounds the memory the feature maps take)


def canonical_grid(
    geometry: Geometry, region: Optional[np.ndarray] = None, *, margin_mm: float = 10.0, multiple: int = 8
) -> Geometry:
    """LPS-aligned grid covering ``geometry``'s field of view, or only the bounding box of
    ``region`` (a mask on ``geometry``) plus ``margin_mm`` in-plane: ``IN_PLANE_MM`` pixels, planes at the
    input's axial spacing (at least ``MIN_SLICE_MM``), plane size padded to a multiple of ``multiple``
    (``2 ** LiverNet.downsamplings`` of the network that will read it)."""
    if region is not None and np.any(region):
        where = np.nonzero(region)
        low_kji = [int(w.min()) for w in where]
        high_kji = [int(w.max()) for w in where]
    else:
        low_kji, high_kji = [0, 0, 0], [n - 1 for n in geometry.shape]
    corners_ijk = np.array(
        [[i, j, k, 1.0] for i in (low_kji[2], high_kji[2]) for j in (low_kji[1], high_kji[1])
         for k in (low_kji[0], high_kji[0])]
    )
    corners_lps = (corners_ijk @ geometry.ijk_to_lps().T)[:, :3]
    margin = np.array([margin_mm, margin_mm, 0.0]) if region is not None else 0.0  # planes stay on the slices
    low, high = corners_lps.min(axis=0) - margin, corners_lps.max(axis=0) + margin
    slice_mm = max(float(geometry.spacing_mm[geometry.axial_axis()]), MIN_SLICE_MM)
    spacing = np.array([IN_PLANE_MM, IN_PLANE_MM, slice_mm])
    size = np.floor((high - low) / spacing).astype(int) + 1
    size[:2] = -(-size[:2] // multiple) * multiple
    origin = (low + high) / 2.0 - spacing * (size - 1) / 2.0
    return Geometry(tuple(int(n) for n in size[::-1]), tuple(spacing), tuple(origin))


def plane_offsets_mm() -> tuple[float, ...]:
    """Superior offsets (mm) of the network's input planes, from below to above."""
    return tuple(NEIGHBOUR_MM * n for n in range(-NEIGHBOURS, NEIGHBOURS + 1))


def network_planes(image: sitk.Image, grid: Geometry, *, liver_level: float, spread: float,
                   outside: float) -> np.ndarray:
    """The network input on ``grid``: ``(K, 2 NEIGHBOURS + 1, H, W)`` float32, channels = the planes
    at :func:`plane_offsets_mm` from each grid plane; values ``(image - liver_level) / spread``
    clipped to +-:data:`CLIP_Z`. ``image`` is a float ITK image in physical (LPS) space; its end
    slices are repeated beyond it, and ``outside`` fills what lies beside it in-plane."""
    slice_axis = 2 - Geometry.from_sitk(image).axial_axis()  # ITK index order (i, j, k)
    repeat = [0, 0, 0]
    repeat[slice_axis] = int(np.ceil(NEIGHBOURS * NEIGHBOUR_MM / image.GetSpacing()[slice_axis])) + 1
    padded = sitk.ZeroFluxNeumannPad(image, repeat, repeat)
    planes = []
    for offset_mm in plane_offsets_mm():
        reference = sitk.Image([int(n) for n in grid.shape[::-1]], sitk.sitkFloat32)
        grid.apply_to_sitk(reference)
        reference.SetOrigin(tuple(np.add(grid.origin_lps_mm, (0.0, 0.0, offset_mm))))
        moved = sitk.Resample(
            padded, reference, sitk.Transform(), sitk.sitkLinear, float(outside), sitk.sitkFloat32
        )
        planes.append(sitk.GetArrayFromImage(moved))
    stack = np.stack(planes, axis=1)
    return np.clip((stack - liver_level) / spread, -CLIP_Z, CLIP_Z).astype(np.float32)


# --- the network in numpy ---------------------------------------------------------------------------


# Feature maps are kept as (channels, planes, rows, columns). A 3 x 3 convolution is nine matrix
# products over the zero-padded maps flattened to one axis per channel: a shift by (row, column)
# is then a fixed offset along that axis, so each product reads a view of the same array (no copy
# per shift) and BLAS runs it as one wide product. Positions in the padding are computed and
# dropped.


def _conv3x3(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """3 x 3 convolution with zero padding, then ReLU. ``x`` (C, N, H, W); ``weight`` (9 C, O),
    rows in (row offset, column offset, channel) order."""
    c, n, h, w = x.shape
    outputs = weight.shape[1]
    row = w + 2
    length = n * (h + 2) * row
    flat = np.zeros((c, length + 2 * row + 2), dtype=np.float32)  # room for the largest shift
    flat[:, :length].reshape(c, n, h + 2, row)[:, :, 1:h + 1, 1:w + 1] = x
    kernel = weight.reshape(9, c, outputs)
    out = np.empty((outputs, length), dtype=np.float32)
    term = np.empty_like(out)
    for offset in range(9):
        dy, dx = divmod(offset, 3)
        shift = dy * row + dx
        np.matmul(kernel[offset].T, flat[:, shift:shift + length], out=out if offset == 0 else term)
        if offset:
            out += term
    out += bias[:, None]
    np.maximum(out, 0.0, out=out)
    return out.reshape(outputs, n, h + 2, row)[:, :, :h, :w]


def _max_pool(x: np.ndarray) -> np.ndarray:
    """2 x 2 max pooling of ``x`` (C, N, H, W), H and W even."""
    rows = np.maximum(x[:, :, 0::2], x[:, :, 1::2])
    return np.maximum(rows[..., 0::2], rows[..., 1::2])


def _up(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """2 x 2 transposed convolution with stride 2: ``weight`` (C, 2, 2, O)."""
    c, n, h, w = x.shape
    outputs = weight.shape[3]
    out = weight.transpose(1, 2, 3, 0).reshape(4 * outputs, c) @ x.reshape(c, -1)
    out = out.reshape(2, 2, outputs, n, h, w).transpose(2, 3, 4, 0, 5, 1).reshape(outputs, n, 2 * h, 2 * w)
    return out + bias[:, None, None, None]


@dataclass(frozen=True)
class LiverNet:
    """One or more U-Nets of the same layout (batch normalisation folded into the convolutions),
    each a dict of arrays by layer name; the liver probability is the mean of theirs.

    A weights file holds one network (arrays named by layer) or several (``member<n>/<layer>``).
    """

    members: tuple[dict, ...]

    @classmethod
    def load(cls, path: Union[str, Path] = WEIGHTS) -> "LiverNet":
        with np.load(Path(path)) as data:
            arrays = {name: data[name].astype(np.float32) for name in data.files}
        if not any("/" in name for name in arrays):
            return cls((arrays,))
        members: dict[str, dict] = {}
        for name, value in arrays.items():
            member, layer = name.split("/", 1)
            members.setdefault(member, {})[layer] = value
        order = sorted(members, key=lambda member: int(member.removeprefix("member")))
        return cls(tuple(members[member] for member in order))

    @property
    def downsamplings(self) -> int:
        """How many times the deepest member halves its planes (the layers say: one up-convolution each)."""
        return max(_downsamplings(arrays) for arrays in self.members)

    def logits(self, planes: np.ndarray, member: int = 0) -> np.ndarray:
        """``planes`` (N, channels, H, W), H and W multiples of ``2 ** downsamplings`` -> one member's
        liver logits (N, H, W)."""
        arrays = self.members[member]

        def block(x: np.ndarray, name: str) -> np.ndarray:
            x = _conv3x3(x, arrays[f"{name}.0.weight"], arrays[f"{name}.0.bias"])
            return _conv3x3(x, arrays[f"{name}.1.weight"], arrays[f"{name}.1.bias"])

        x = np.ascontiguousarray(planes.transpose(1, 0, 2, 3), dtype=np.float32)
        skips = []
        depth = _downsamplings(arrays)
        for level in range(depth + 1):
            x = block(x if level == 0 else _max_pool(x), f"encoder{level}")
            skips.append(x)
        for level in reversed(range(depth)):
            up = _up(x, arrays[f"up{level}.weight"], arrays[f"up{level}.bias"])
            x = block(np.concatenate([up, skips[level]], axis=0), f"decoder{level}")
        out = arrays["head.weight"].T @ x.reshape(x.shape[0], -1) + arrays["head.bias"][:, None]
        return out.reshape(x.shape[1:])

    def probability(self, planes: np.ndarray) -> np.ndarray:
        """Liver probability (N, H, W) float32 for ``planes`` (N, channels, H, W): the members'
        mean, computed in batches of :data:`BATCH_PLANES` planes."""
        out = np.zeros((planes.shape[0],) + planes.shape[2:], dtype=np.float32)
        for start in range(0, planes.shape[0], BATCH_PLANES):
            for member in range(len(self.members)):
                logits = self.logits(planes[start:start + BATCH_PLANES], member)
                out[start:start + BATCH_PLANES] += 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
        return out / len(self.members)


def _downsamplings(arrays: dict) -> int:
    return sum(name.startswith("up") and name.endswith(".weight") for name in arrays)


@lru_cache(maxsize=2)
def shipped_network(path: Optional[str] = None) -> LiverNet:
    """The network from ``path`` (default: the weights shipped with LiverMets), loaded once."""
    weights = Path(path or WEIGHTS)
    if not weights.is_file():
        raise LiverMetsError(
            f"the liver network's weights are missing ({weights}); reinstall LiverMets, "
            "or segment without them (engine 'classical')"
        )
    return LiverNet.load(weights)


def model_card() -> dict:
    """What the shipped weights were trained on and how they scored (``liver_net.json``)."""
    return json.loads(WEIGHTS.with_suffix(".json").read_text(encoding="utf-8"))
