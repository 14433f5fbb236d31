"""The numpy U-Net of livermets.segmentation.liver_net: its layers against direct formulas, the
canonical grid's geometry, the network input's units, and the shipped weights' card."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from livermets.errors import LiverMetsError
from livermets.geometry import Geometry
from livermets.segmentation import liver_net


def _direct_conv3x3(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Textbook loop: out[o, n, y, x] = relu(bias[o] + sum_{dy, dx, c} w[dy, dx, c, o] * x[c, n, y+dy-1, x+dx-1])."""
    c, n, h, w = x.shape
    kernel = weight.reshape(3, 3, c, -1)
    out = np.zeros((kernel.shape[3], n, h, w))
    for y in range(h):
        for xx in range(w):
            for dy in range(3):
                for dx in range(3):
                    yy, xs = y + dy - 1, xx + dx - 1
                    if 0 <= yy < h and 0 <= xs < w:
                        out[:, :, y, xx] += np.einsum("cn,co->on", x[:, :, yy, xs], kernel[dy, dx])
    return np.maximum(out + bias[:, None, None, None], 0.0)


def test_convolution_matches_the_textbook_loop():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 2, 5, 6)).astype(np.float32)
    weight = rng.normal(size=(36, 3)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    assert np.allclose(liver_net._conv3x3(x, weight, bias), _direct_conv3x3(x, weight, bias), atol=1e-5)


def test_transposed_convolution_and_pooling_match_their_definitions():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 2, 4, 4)).astype(np.float32)
    weight = rng.normal(size=(3, 2, 2, 5)).astype(np.float32)
    bias = rng.normal(size=5).astype(np.float32)
    up = liver_net._up(x, weight, bias)
    assert up.shape == (5, 2, 8, 8)
    # every input pixel (y, x) writes the 2 x 2 block at (2y + a, 2x + b) with kernel tap (a, b)
    for a in range(2):
        for b in range(2):
            expected = np.einsum("cnyx,co->onyx", x, weight[:, a, b, :]) + bias[:, None, None, None]
            assert np.allclose(up[:, :, a::2, b::2], expected, atol=1e-5)
    pooled = liver_net._max_pool(x)
    assert pooled.shape == (3, 2, 2, 2)
    assert pooled[1, 0, 1, 0] == x[1, 0, 2:4, 0:2].max()


def test_canonical_grid_covers_an_oblique_input_with_lps_axes():
    angle = np.deg2rad(25.0)
    direction = (np.cos(angle), -np.sin(angle), 0.0, np.sin(angle), np.cos(angle), 0.0, 0.0, 0.0, 1.0)
    geometry = Geometry((30, 100, 120), (1.5, 1.5, 5.0), (10.0, -20.0, 30.0), direction)
    grid = liver_net.canonical_grid(geometry)
    assert grid.direction_lps == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert grid.spacing_ijk_mm == (liver_net.IN_PLANE_MM, liver_net.IN_PLANE_MM, 5.0)
    assert grid.shape[1] % 8 == 0 and grid.shape[2] % 8 == 0
    deeper = liver_net.canonical_grid(geometry, multiple=32)  # for a network that halves its planes 5 times
    assert deeper.shape[1] % 32 == 0 and deeper.shape[2] % 32 == 0 and deeper.shape[0] == grid.shape[0]
    # every corner of the input lies inside the canonical grid (within half a voxel)
    corners = np.array([[k, j, i] for k in (0, 29) for j in (0, 99) for i in (0, 119)], dtype=float)
    inside = grid.ras_to_kji(geometry.kji_to_ras(corners))
    assert (inside >= -0.5).all() and (inside <= np.asarray(grid.shape) - 0.5).all()


def test_network_planes_hold_neighbours_in_liver_units():
    # an image whose value is its LPS z (mm): the channels must read z + each plane offset, and
    # beyond the image's ends the end slices' values (repeated, not background)
    geometry = Geometry((20, 40, 40), (2.0, 2.0, 5.0), (0.0, 0.0, 0.0))
    z_mm = np.broadcast_to((np.arange(20) * 5.0)[:, None, None], geometry.shape).astype(np.float32)
    image = sitk.GetImageFromArray(np.ascontiguousarray(z_mm))
    geometry.apply_to_sitk(image)
    grid = liver_net.canonical_grid(geometry)
    planes = liver_net.network_planes(image, grid, liver_level=40.0, spread=10.0, outside=0.0)
    k = grid.shape[0] // 2
    plane_z = grid.kji_to_ras(np.array([k, 0, 0]))[2]
    expected = [(plane_z + offset - 40.0) / 10.0 for offset in liver_net.plane_offsets_mm()]
    assert np.allclose(planes[k, :, 20, 20], expected, atol=1e-3)
    top = grid.kji_to_ras(np.array([grid.shape[0] - 1, 0, 0]))[2]
    expected_top = [(min(top + offset, 95.0) - 40.0) / 10.0 for offset in liver_net.plane_offsets_mm()]
    assert np.allclose(planes[-1, :, 20, 20], expected_top, atol=1e-3)


def test_shipped_weights_fit_the_network_and_the_card_names_its_data():
    network = liver_net.shipped_network()
    card = liver_net.model_card()
    assert "CHAOS" in card["data"] and card["training_cases"]
    assert len(network.members) == len(card["steps"])  # one network per training length
    assert card["input"]["neighbour_mm"] == liver_net.NEIGHBOUR_MM
    assert card["input"]["in_plane_mm"] == liver_net.IN_PLANE_MM
    assert card["input"]["neighbours"] == liver_net.NEIGHBOURS
    channels = 2 * liver_net.NEIGHBOURS + 1
    probability = network.probability(np.zeros((2, channels, 16, 24), dtype=np.float32))
    assert probability.shape == (2, 16, 24) and np.isfinite(probability).all()


def test_missing_weights_name_the_file_and_the_way_out(tmp_path):
    with pytest.raises(LiverMetsError, match="weights are missing.*classical"):
        liver_net.shipped_network(str(tmp_path / "liver_net.npz"))


def test_a_weights_file_of_several_networks_gives_the_mean_of_their_probabilities(tmp_path):
    shipped = liver_net.shipped_network()
    first = shipped.members[0]
    second = {**first, "head.bias": first["head.bias"] + 2.0}  # the same network, every logit + 2
    np.savez(tmp_path / "two.npz", **{f"member{n}/{name}": value for n, arrays in enumerate((first, second))
                                       for name, value in arrays.items()})
    np.savez(tmp_path / "one.npz", **first)
    channels = 2 * liver_net.NEIGHBOURS + 1
    planes = np.random.default_rng(0).normal(size=(3, channels, 16, 16)).astype(np.float32)
    logits = liver_net.LiverNet((first,)).logits(planes)
    expected = (1.0 / (1.0 + np.exp(-logits)) + 1.0 / (1.0 + np.exp(-logits - 2.0))) / 2.0
    assert len(liver_net.LiverNet.load(tmp_path / "two.npz").members) == 2
    assert np.allclose(liver_net.LiverNet.load(tmp_path / "two.npz").probability(planes), expected, atol=1e-5)
    assert np.allclose(liver_net.LiverNet.load(tmp_path / "one.npz").probability(planes),
                       1.0 / (1.0 + np.exp(-logits)), atol=1e-5)


def _deeper(member: dict, rng: np.random.Generator, mix: float) -> dict:
    """``member`` with one more level: a random encoder and up-convolution below its deepest, and
    a decoder that passes the skip connection through (a centre-tap identity on the skip half of
    its input; feature maps are >= 0 after ReLU) plus ``mix`` x random weights on the up half."""
    deepest = liver_net.LiverNet((member,)).downsamplings
    channels = member[f"encoder{deepest}.1.bias"].size
    below = 2 * channels
    first = np.zeros((9, 2 * channels, channels), dtype=np.float32)  # (tap, input channel, output)
    first[:, :channels] = mix * rng.normal(scale=0.1, size=(9, channels, channels))  # up half
    first[4, channels:] = np.eye(channels)  # skip half, centre tap
    second = np.zeros((9, channels, channels), dtype=np.float32)
    second[4] = np.eye(channels)
    zeros = np.zeros(channels, dtype=np.float32)
    return {
        **member,
        f"encoder{deepest + 1}.0.weight": rng.normal(size=(9 * channels, below)).astype(np.float32),
        f"encoder{deepest + 1}.0.bias": np.zeros(below, dtype=np.float32),
        f"encoder{deepest + 1}.1.weight": rng.normal(size=(9 * below, below)).astype(np.float32),
        f"encoder{deepest + 1}.1.bias": np.zeros(below, dtype=np.float32),
        f"up{deepest}.weight": rng.normal(size=(below, 2, 2, channels)).astype(np.float32),
        f"up{deepest}.bias": zeros,
        f"decoder{deepest}.0.weight": first.reshape(-1, channels), f"decoder{deepest}.0.bias": zeros,
        f"decoder{deepest}.1.weight": second.reshape(-1, channels), f"decoder{deepest}.1.bias": zeros,
    }


def test_the_network_depth_is_read_from_the_weights():
    # a level added below the deepest, whose decoder passes the skip connection through unchanged,
    # gives the shallower network's logits when that decoder ignores the level, and others when not
    shallow = liver_net.shipped_network().members[0]
    rng = np.random.default_rng(2)
    channels = 2 * liver_net.NEIGHBOURS + 1
    planes = rng.normal(size=(2, channels, 16, 32)).astype(np.float32)
    expected = liver_net.LiverNet((shallow,)).logits(planes)
    ignored, used = _deeper(shallow, rng, 0.0), _deeper(shallow, rng, 1.0)
    assert liver_net.LiverNet((used,)).downsamplings == liver_net.LiverNet((shallow,)).downsamplings + 1
    assert np.allclose(liver_net.LiverNet((ignored,)).logits(planes), expected, atol=1e-4)
    assert not np.allclose(liver_net.LiverNet((used,)).logits(planes), expected, atol=1e-2)


def test_the_planes_are_padded_for_the_network_that_reads_them():
    # a network that halves its planes twice more than the shipped one needs sizes that are
    # multiples of 32; with its extra levels ignored it must find the liver the shipped one finds
    from livermets.phantom import make_phantom
    from livermets.segmentation import liver

    phantom = make_phantom(1, variant="small")
    model = liver.intensity_model(np.asarray(phantom.images["t2"]), phantom.geometry, sequence="t2")
    shipped = liver_net.shipped_network().members[0]
    rng = np.random.default_rng(4)
    deeper = liver_net.LiverNet((_deeper(_deeper(shipped, rng, 0.0), rng, 0.0),))
    assert any(n % 32 for n in liver_net.canonical_grid(model.work_geometry, model.body).shape[1:])
    expected = liver.network_organ(liver.network_probability(model, liver_net.LiverNet((shipped,))),
                                   model.work_geometry)
    found = liver.network_organ(liver.network_probability(model, deeper), model.work_geometry)
    assert 2 * np.count_nonzero(found & expected) / (found.sum() + expected.sum()) > 0.97
