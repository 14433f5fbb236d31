"""Train the liver network of ``livermets.segmentation.liver_net`` (development tool, needs PyTorch).

Usage (from the repository root, in an environment with ``torch`` and the core installed)::

    python Testing/train_liver_net.py --out DIR [--data ../shared/data] [--holdout chaos01,chaos02]
                                      [--steps 3000 3000] [--seed 0 1] [--threads 2] [--cache DIR]
                                      [--lesion-copies N [--lesion-values LO HI] [--lesion-subcapsular-every K]]
                                      [--channels 8 16 32 64] [--level-offset-sd 0.15] [--bias-field-sd 0]
                                      [--deform-sd 0] [--organ-weight 0]

Writes ``DIR/liver_net.npz`` (the numpy weights ``LiverNet.load`` reads) and ``DIR/liver_net.json``
(training cases, settings, versions). One network is trained for each ``--steps`` value (same data
and learning-rate schedule, stretched to its length; the n-th from seed n, or from the ``--seed``
given for it, or from one ``--seed`` for all); ``LiverNet`` averages their probabilities. Each
network's training depends only on its own steps, seed and thread count, so networks trained in
separate runs may be merged. ``--holdout`` leaves cases out, for the cross-validation that
``Testing/evaluate.py --liver-folds`` reports; the shipped weights use every case.

Training data
-------------
* CHAOS T2-SPIR MRI with manual liver labels (Kavur et al., Med Image Anal 2021,
  doi:10.1016/j.media.2020.101950; CC BY-SA 4.0), as found in ``--data``/chaos_t2: the ten cases of
  ``../shared/data`` for the shipped weights; any folder laid out the same way will do (for example
  with the other CHAOS MR cases of ``Testing/import_chaos_t2.py`` linked in beside them). ``--cache``
  keeps the prepared cases by name only: give each ``--data`` folder its own.
* With ``--lesion-copies N`` (not used for the shipped weights): N copies of each CHAOS case with
  synthetic lesions inserted (lobulated balls of :data:`LESION_DIAMETERS_MM`, T2 signal log-uniform
  in ``--lesion-values`` times the liver's median, one in ``--lesion-subcapsular-every`` bulging
  through the capsule), the lesions labelled liver: CHAOS livers are healthy, and a network that
  never saw a lesion leaves a large one at the capsule outside the liver. Placement seeds differ
  from those of ``Testing/evaluate_lesions.py``. Measured with 2 copies, values 1.3-3.5 and every
  other lesion bulging (5 folds, 1500 steps): held-out whole-pipeline lesion sensitivity 0.500 ->
  0.517 (>= 10 mm 0.650 -> 0.725, lesion Dice 0.365 -> 0.462), but on the livers without lesions
  median Dice fell from 0.856 to 0.829 (worst 0.671 -> 0.583): the network learnt that bright
  tissue bulging from the liver is liver, and took 71 ml of a T2-bright kidney in chaos15.
  With ``--lesion-copies 1`` and the other defaults (values 1.3-2.2, one in four bulging), on two
  folds: liver Dice (combined) chaos03 0.814 -> 0.825, chaos05 0.781 -> 0.851, chaos13
  0.874 -> 0.840, chaos15 0.671 -> 0.605; whole-pipeline lesions found 11 -> 13 of 24, false
  positives 9 -> 15.
* LiverMets phantoms (seeds :data:`PHANTOM_SEEDS`, standard and thick grids, every sequence), so the
  network also meets CT, hepatobiliary, portal-venous, arterial and diffusion contrast.

Also tried, not used for the shipped weights: a deeper U-Net (``--channels 8 16 32 64 128``, five
levels, 4x the weights, about the same inference time). On the five folds (1500 steps, one network per
fold) its training loss ended lower (0.22-0.26 against 0.28-0.31) but held out it was no better:
median liver Dice 0.850 against 0.856 (better in five cases, worse in four: chaos03 0.814 -> 0.749,
chaos05 0.781 -> 0.830), worst case 0.677 against 0.676, median volume error 9.7 % against 11.0 %.
Fewer livers hurt, more did not help: with six
(``--holdout`` of four cases, scored on the same two as the eight-liver fold; four folds) the
held-out mean Dice was 0.810 against 0.841 and the worst 0.563 against 0.707; with nine (one case
held out; chaos01, 03, 08, 13) 0.865 against 0.871 for eight on those four, within training noise.
With eighteen (each fold's eight and the other ten CHAOS MR cases of ``Testing/import_chaos_t2.py``;
five folds) the held-out median Dice was 0.838, worst 0.669, median volume error 14 %: better than with
eight in two of the eight cases compared (mean 0.824 against 0.841). A deeper network (five levels) on
the eighteen gave chaos03 0.821 and chaos05 0.799 against 0.817 and 0.828. At 1500 steps, more livers
of the same scanner and sequence did not move it (each is then seen less often: see below).

Also tried, not used: a wider level offset and a bias field. Held out, the network is sensitive to the
liver level it is given: moving it by a quarter of the spread changed Dice by up to 0.09, in either
direction depending on the case. On the five folds (1500 steps, one network per fold, one thread; the
``builtin`` liver of ``Testing/evaluate.py --liver-folds``), against the shipped recipe's single
networks (median Dice 0.856, worst 0.676, median volume error 11.0 %): ``--level-offset-sd 0.35`` gave
0.846 / 0.707 / 13.6 % (better in 3 cases, worse in 7); with ``--bias-field-sd 0.15`` as well, 0.840 /
0.718 / 9.5 % (better in 5, worse in 5: chaos05 0.781 -> 0.817, chaos13 0.874 -> 0.836). The worst case
improves, the median does not. The three networks of each fold averaged (shipped recipe, wider offset,
bias field): median 0.860, worst 0.713, volume error 11.7 % for the network alone, no better than a pair
of the shipped recipe (0.869 / 0.718 / 8.9 %): the gain is that of averaging, not of the augmentation.

Also tried, not used: a smooth elastic deformation (``--deform-sd 0.04``: displacements of up to about
6 mm sd, control vectors 80 mm apart), since the held-out errors are errors of shape (a thin left lobe
or the dome lost, colon or stomach taken). Same protocol: median Dice 0.847, worst 0.657, median volume
error 8.9 %, against 0.856 / 0.676 / 11.0 % (better in 4 cases, worse in 6: chaos05 0.781 -> 0.816,
chaos08 0.844 -> 0.830 with its volume error -6 % -> +17 %).

Also tried, not used: the neighbours as extra outputs (``--organ-weight 0.5``: kidneys and spleen from
the CHAOS and phantom labels, learnt beside the liver with that weight on their cross-entropy; only the
liver output is exported), since a T2-bright kidney or the spleen is what a held-out liver most often
takes or loses its border against. On two folds (chaos03+05, chaos13+15; 1500 steps, one network per
fold, one thread), the network alone in today's pipeline, against the same recipe without the extra
outputs: chaos03 0.822 -> 0.825, chaos05 0.826 -> 0.728, chaos13 0.871 -> 0.852, chaos15 0.707 -> 0.645,
every liver smaller (volume error -34 % in chaos05): the other folds were not trained.

Training length
---------------
The experiments above trained single networks for 1500 steps, to fit in the time. Measured on the ten
other CHAOS MR livers (``Testing/import_chaos_t2.py``), which none of these networks saw, with networks
trained on the ten of ``../shared/data`` (``builtin`` liver of ``Testing/evaluate.py``): 1500 steps
gave median Dice 0.870, worst 0.791; 3000 steps 0.902, worst 0.867 (seed 0) and 0.902, worst 0.873
(seed 1); the former shipped pair (1500 and 3000 steps, seed 0) 0.897, worst 0.862; the two 3000-step
networks averaged 0.907, worst 0.875, better than that pair in all ten cases. Training length moved the
unseen livers more than anything else tried here, so the comparisons above, made at 1500 steps, may
change at 3000. The shipped pair is the 3000-step network of the former pair and the seed-1 one,
trained in separate runs with ``--steps 3000 --seed 1 --threads 1`` and merged (each network's training
depends only on its own steps, seed and thread count). Longer still helps: one network of 6000 steps
(seed 0, one thread) gave 0.914, worst 0.866, and averaged with the seed-1 network of 3000 steps 0.915,
worst 0.875, median volume error 5.7 % (better than the shipped pair in seven cases, equal in three); it
is not shipped yet, as the figures that depend on the liver were measured with the shipped pair.

Every image goes through the product's own input path (``liver.intensity_model`` then
``liver.network_input``), so training and use see the same canonical grid and contrast units.
Augmentation: in-plane rotation, scaling and shift, contrast sign flip (polarity), contrast gain (0.5-2)
and offset (an error of the liver level, ``--level-offset-sd`` spreads), a monotone curve, noise, a field
of view cut just above or below; with ``--bias-field-sd`` a smooth multiplicative bias field, with
``--deform-sd`` a smooth elastic deformation (of image and truth alike).
Deterministic for a given seed and thread count.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverMetsModule"))
sys.path.insert(0, str(REPO / "Testing"))

from livermets import __version__
from livermets.geometry import Geometry
from livermets.labels import PHANTOM_LABEL_VALUES as PHANTOM_CODES
from livermets.segmentation import liver as liver_module
from livermets.segmentation import liver_net
from livermets.segmentation import morphology as morph

PHANTOM_SEEDS = (100, 101, 102)
PHANTOM_VARIANTS = ("standard", "thick")
PHANTOM_SHARE = 0.2    # share of each batch drawn from phantom planes
FLIP_SHARE = 0.3       # share of samples whose contrast sign is flipped (polarity)
CUT_SHARE = 0.2        # share of samples whose field of view is cut above or below
LEVEL_OFFSET_SD = 0.15  # sd of the offset (spreads) added to a sample's contrast: an error of the liver level
BIAS_FIELD_SD = 0.0     # largest log-sd of a smooth multiplicative bias field per sample (0: none)
BIAS_FIELD_NODES = 4    # the bias field's random control values across a crop, each way
DEFORM_SD = 0.0         # largest sd of a smooth random displacement, in half-crops (0: none; 0.04 = 6.4 mm)
DEFORM_NODES = 5        # the displacement's random control vectors across a crop, each way
CROP = 160             # training crop (pixels of IN_PLANE_MM): 320 mm
BATCH = 16
CHANNELS = (8, 16, 32, 64)  # the shipped width: ~0.23 MB of weights per network, CPU inference in seconds
LESION_DIAMETERS_MM = (8.0, 12.0, 18.0, 25.0, 35.0, 50.0)  # inserted lesions, in random order per copy
LESION_SEED = 1000          # placement seed = LESION_SEED + 10 * case number + copy
ORGANS = ("liver", "kidneys", "spleen")  # truth label values 1, 2, 3; the network's outputs in this order
ORGAN_WEIGHT = 0.0      # weight of the kidney and spleen outputs' loss (0: liver only, the shipped recipe)
STEPS = (3000, 3000)        # one network per value, the n-th from seed n unless --seed says (see "Training length")


# --- data ------------------------------------------------------------------------------------------
def prepare(image: np.ndarray, geometry: Geometry, truth: np.ndarray, sequence: str) -> dict:
    """Network input planes and the truth on the canonical grid for one image: ``truth`` is a
    label map of :data:`ORGANS` (0 elsewhere) or a liver mask."""
    import SimpleITK as sitk

    model = liver_module.intensity_model(image, geometry, sequence=sequence)
    grid, planes = liver_module.network_input(model)
    truth = np.asarray(truth, dtype=np.uint8)
    target = np.zeros(grid.shape, dtype=np.uint8)
    for value in range(1, len(ORGANS) + 1):
        moved = morph.resample_to(morph.to_sitk((truth == value).astype(np.float32), geometry), grid)
        target[sitk.GetArrayFromImage(moved) >= 0.5] = value
    outside = (model.background() - model.mode) / model.contrast_spread()
    return {"planes": planes, "truth": target,
            "outside": float(np.clip(outside, -liver_net.CLIP_Z, liver_net.CLIP_Z))}


def chaos_samples(data: Path, holdout: set[str]) -> dict[str, dict]:
    from livermets.imageio import read_image

    samples = {}
    for path in sorted((data / "chaos_t2").glob("chaos*_t2spir.nii.gz")):
        name = path.name.split("_")[0]
        if name in holdout:
            continue
        image = read_image(path)
        labels = read_image(path.with_name(f"{name}_labels.nii.gz")).array
        organs = np.select([labels == 1, np.isin(labels, (2, 3)), labels == 4], [1, 2, 3], 0)
        samples[name] = prepare(image.array, image.geometry, organs, "t2")
        print(f"prepared {name}: {samples[name]['planes'].shape}", flush=True)
    return samples


def chaos_lesion_samples(data: Path, copies: int, values: tuple[float, float],
                         subcapsular_every: int) -> dict[str, dict]:
    """``chaosNN-lesionsC``: ``copies`` of each CHAOS case with inserted lesions (T2 signal
    log-uniform in ``values`` x the liver's median), the truth liver plus lesions."""
    from livermets.imageio import read_image
    from synthetic_liver import make_case, place_balls

    samples = {}
    for path in sorted((data / "chaos_t2").glob("chaos*_t2spir.nii.gz")):
        name = path.name.split("_")[0]
        image = read_image(path)
        liver = read_image(path.with_name(f"{name}_labels.nii.gz")).array == 1
        for copy in range(copies):
            seed = LESION_SEED + 10 * int(name[-2:]) + copy
            rng = np.random.default_rng(seed)
            sizes = [(float(d), False) for d in rng.permutation(LESION_DIAMETERS_MM)]
            balls = place_balls(liver, image.geometry, rng, sizes, subcapsular_every=subcapsular_every)
            for ball in balls:
                ball.value = float(np.exp(rng.uniform(*np.log(values))))
                ball.irregularity = float(rng.uniform(0.1, 0.3))
            case = make_case(geometry=image.geometry, balls=balls, sequences=("t2",), liver=liver,
                             background={"t2": image.array.astype(np.float32)}, seed=seed)
            copy_name = f"{name}-lesions{copy}"
            samples[copy_name] = prepare(case.images["t2"], image.geometry, liver | (case.lesions > 0), "t2")
            print(f"prepared {copy_name}: {len(balls)} lesions", flush=True)
    return samples


def phantom_samples() -> dict[str, dict]:
    from livermets.phantom import make_phantom

    samples = {}
    for seed in PHANTOM_SEEDS:
        for variant in PHANTOM_VARIANTS:
            phantom = make_phantom(seed, variant=variant)
            for sequence, image in phantom.images.items():
                name = f"phantom{seed}-{variant}-{sequence}"
                anatomy = phantom.anatomy_for(sequence)
                kidneys = np.isin(anatomy, [PHANTOM_CODES["right_kidney"], PHANTOM_CODES["left_kidney"]])
                organs = np.select([phantom.liver > 0, kidneys, anatomy == PHANTOM_CODES["spleen"]], [1, 2, 3], 0)
                samples[name] = prepare(image, phantom.geometry, organs, sequence)
                print(f"prepared {name}: {samples[name]['planes'].shape}", flush=True)
    return samples


# --- network (same layer names as the numpy LiverNet) ----------------------------------------------
def build_network(channels=CHANNELS, outputs: int = 1):
    import torch
    from torch import nn

    def block(inputs: int, outputs: int):
        layers = []
        for n_in in (inputs, outputs):
            layers.append(nn.Sequential(nn.Conv2d(n_in, outputs, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)))
        return nn.Sequential(*layers)

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            c = channels
            inputs = len(liver_net.plane_offsets_mm())
            self.encoder = nn.ModuleList([block(inputs if n == 0 else c[n - 1], c[n]) for n in range(len(c))])
            self.up = nn.ModuleList([nn.ConvTranspose2d(c[n + 1], c[n], 2, stride=2) for n in range(len(c) - 1)])
            self.decoder = nn.ModuleList([block(2 * c[n], c[n]) for n in range(len(c) - 1)])
            self.head = nn.Conv2d(c[0], outputs, 1)

        def forward(self, x):
            skips = []
            for level, layer in enumerate(self.encoder):
                x = layer(x if level == 0 else torch.nn.functional.max_pool2d(x, 2))
                skips.append(x)
            for level in reversed(range(len(self.up))):
                x = self.decoder[level](torch.cat([self.up[level](x), skips[level]], 1))
            return self.head(x)

    return UNet()


def export(networks: list, path: Path) -> None:
    """Fold batch normalisation into the convolutions; write the arrays LiverNet reads (float16),
    ``member<n>/<layer>`` for the n-th network."""
    arrays = {}
    for number, network in enumerate(networks):
        arrays.update({f"member{number}/{name}": value for name, value in _folded(network).items()})
    np.savez_compressed(path, **{name: value.astype(np.float16) for name, value in arrays.items()})


def _folded(network) -> dict[str, np.ndarray]:
    """One network's arrays by layer name, batch normalisation folded into the convolutions."""
    arrays = {}
    for kind, blocks in (("encoder", network.encoder), ("decoder", network.decoder)):
        for level, block in enumerate(blocks):
            for index, unit in enumerate(block):
                conv, norm = unit[0], unit[1]
                scale = (norm.weight / (norm.running_var + norm.eps).sqrt()).detach().numpy()
                weight = conv.weight.detach().numpy() * scale[:, None, None, None]
                bias = norm.bias.detach().numpy() - norm.running_mean.detach().numpy() * scale
                # (O, C, 3, 3) -> (3, 3, C, O) -> (9 C, O): row offset, column offset, channel
                arrays[f"{kind}{level}.{index}.weight"] = weight.transpose(2, 3, 1, 0).reshape(-1, weight.shape[0])
                arrays[f"{kind}{level}.{index}.bias"] = bias
    for level, up in enumerate(network.up):
        arrays[f"up{level}.weight"] = up.weight.detach().numpy().transpose(0, 2, 3, 1)  # (C, 2, 2, O)
        arrays[f"up{level}.bias"] = up.bias.detach().numpy()
    # only the liver output: the kidney and spleen outputs are there for training alone
    arrays["head.weight"] = network.head.weight.detach().numpy()[:1, :, 0, 0].T
    arrays["head.bias"] = network.head.bias.detach().numpy()[:1]
    return arrays


# --- training --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Augmentation:
    """The strengths of the augmentations that ``--level-offset-sd``, ``--bias-field-sd`` and
    ``--deform-sd`` set (the others are fixed by the constants above)."""

    level_sd: float = LEVEL_OFFSET_SD
    bias_sd: float = BIAS_FIELD_SD
    deform_sd: float = DEFORM_SD


def crop(sample: dict, plane: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A CROP x CROP window of one plane (padded with the image's outside value), random position."""
    planes, truth = sample["planes"][plane], sample["truth"][plane]
    _, h, w = planes.shape
    size_h, size_w = max(h, CROP), max(w, CROP)
    x = np.full((planes.shape[0], size_h, size_w), sample["outside"], dtype=np.float32)
    y = np.zeros((size_h, size_w), dtype=np.float32)
    top, left = (size_h - h) // 2, (size_w - w) // 2
    x[:, top:top + h, left:left + w] = planes
    y[top:top + h, left:left + w] = truth
    row = int(rng.integers(0, size_h - CROP + 1))
    column = int(rng.integers(0, size_w - CROP + 1))
    return x[:, row:row + CROP, column:column + CROP], y[row:row + CROP, column:column + CROP]


def augment(x, y, outside, rng: np.random.Generator, settings: Augmentation = Augmentation()):
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    angle = rng.uniform(-0.21, 0.21, n)
    scale = rng.uniform(0.85, 1.2, n)
    shift = rng.uniform(-0.08, 0.08, (n, 2))
    theta = np.zeros((n, 2, 3), dtype=np.float32)
    theta[:, 0, 0], theta[:, 0, 1] = np.cos(angle) / scale, -np.sin(angle) / scale
    theta[:, 1, 0], theta[:, 1, 1] = np.sin(angle) / scale, np.cos(angle) / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(torch.from_numpy(theta), list(x.shape), align_corners=False)
    if settings.deform_sd > 0:
        grid = grid + _displacement(n, tuple(x.shape[-2:]), settings.deform_sd, rng)
    outside = outside.view(n, 1, 1, 1)
    x = F.grid_sample(x - outside, grid, align_corners=False) + outside
    y = (F.grid_sample(y, grid, align_corners=False) > 0.5).float()  # one channel per organ
    if settings.bias_sd > 0:
        x = _bias_field(x, outside, settings.bias_sd, rng)
    sign = torch.from_numpy(np.where(rng.random(n) < FLIP_SHARE, -1.0, 1.0).astype(np.float32)).view(n, 1, 1, 1)
    gain = torch.from_numpy(np.exp(rng.uniform(np.log(0.5), np.log(2.0), n)).astype(np.float32)).view(n, 1, 1, 1)
    offset = torch.from_numpy(rng.normal(0.0, settings.level_sd, n).astype(np.float32)).view(n, 1, 1, 1)
    power = torch.from_numpy(rng.uniform(0.75, 1.33, n).astype(np.float32)).view(n, 1, 1, 1)
    x = torch.sign(x) * torch.abs(x) ** power
    x = sign * (gain * x + offset)
    x = x + torch.from_numpy(rng.normal(0.0, 1.0, x.shape).astype(np.float32)) * \
        torch.from_numpy(rng.uniform(0.0, 0.15, n).astype(np.float32)).view(n, 1, 1, 1)
    x = _cut_field_of_view(x, rng)
    return x.clamp(-liver_net.CLIP_Z, liver_net.CLIP_Z), y


def _smooth_random_field(n: int, components: int, nodes: int, size: tuple[int, int], largest_sd: float,
                         rng: np.random.Generator):
    """``(n, components, *size)``: per sample, bicubic interpolation of ``nodes`` x ``nodes``
    standard normal control values (one set per component) times ``a`` drawn uniformly in
    0..``largest_sd``."""
    import torch
    import torch.nn.functional as F

    values = torch.from_numpy(rng.normal(0.0, 1.0, (n, components, nodes, nodes)).astype(np.float32))
    amplitude = torch.from_numpy(rng.uniform(0.0, largest_sd, n).astype(np.float32)).view(n, 1, 1, 1)
    return amplitude * F.interpolate(values, size=size, mode="bicubic", align_corners=True)


def _displacement(n: int, size: tuple[int, int], deform_sd: float, rng: np.random.Generator):
    """A smooth random displacement of each sample's sampling grid (image and truth alike), in the
    grid's units (-1..1 across the crop), from DEFORM_NODES^2 control vectors. Livers differ in shape
    more than a rotation and a scaling of eight training livers show."""
    return _smooth_random_field(n, 2, DEFORM_NODES, size, deform_sd, rng).permute(0, 2, 3, 1)


def _bias_field(x, outside, bias_sd: float, rng: np.random.Generator):
    """Multiply each sample's signal (its value above the ``outside`` value, which stands for
    intensity zero) by a smooth field: exp of a :func:`_smooth_random_field` of BIAS_FIELD_NODES^2
    control values and largest sd ``bias_sd``. In the network's units a multiplicative field is a
    gain and a spatially varying offset of the liver level, as a coil's residual bias is."""
    import torch

    field = torch.exp(_smooth_random_field(x.shape[0], 1, BIAS_FIELD_NODES, tuple(x.shape[-2:]), bias_sd, rng))
    return (x - outside) * field + outside


def _cut_field_of_view(x, rng: np.random.Generator):
    """For a fifth of the samples, pretend the image ends 1..NEIGHBOURS planes above or below: the
    planes beyond repeat the last one kept (as ``network_planes`` does at an image's end)."""
    middle = liver_net.NEIGHBOURS
    for n in np.flatnonzero(rng.random(x.shape[0]) < CUT_SHARE):
        keep = int(rng.integers(0, middle))  # planes kept beyond the middle one on that side
        if rng.random() < 0.5:
            x[n, :middle - keep] = x[n, middle - keep].clone()
        else:
            x[n, middle + keep + 1:] = x[n, middle + keep].clone()
    return x


def network_seeds(steps: list[int], seeds: list[int] | None) -> list[int]:
    """The seed of each network (one per ``steps`` value): the n-th from seed n when ``seeds`` is
    None, from the one seed given, or from the seed given for it."""
    if seeds is None:
        return list(range(len(steps)))
    if len(seeds) not in (1, len(steps)):
        raise ValueError(f"give one --seed, or one per --steps value ({len(steps)}), not {len(seeds)}")
    return list(seeds) * len(steps) if len(seeds) == 1 else list(seeds)


def train(samples: dict[str, dict], steps: int, seed: int, channels=CHANNELS, settings: Augmentation = Augmentation(),
          organ_weight: float = ORGAN_WEIGHT):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    real = [(name, k) for name, s in samples.items() if not name.startswith("phantom") for k in range(len(s["truth"]))]
    synthetic = [(name, k) for name, s in samples.items() if name.startswith("phantom")
                 for k in range(len(s["truth"]))]
    outputs = len(ORGANS) if organ_weight > 0 else 1
    network = build_network(channels, outputs)
    optimiser = torch.optim.AdamW(network.parameters(), lr=2e-3, weight_decay=1e-4)
    started = time.time()
    running = 0.0
    for step in range(steps):
        picks = [synthetic[rng.integers(len(synthetic))] if synthetic and rng.random() < PHANTOM_SHARE
                 else real[rng.integers(len(real))] for _ in range(BATCH)]
        pairs = [crop(samples[name], plane, rng) for name, plane in picks]
        x = torch.from_numpy(np.stack([p[0] for p in pairs]))
        labels = np.stack([p[1] for p in pairs])
        y = torch.from_numpy(np.stack([labels == value for value in range(1, outputs + 1)], 1).astype(np.float32))
        outside = torch.tensor([samples[name]["outside"] for name, _ in picks], dtype=torch.float32)
        x, y = augment(x, y, outside, rng, settings)
        for group in optimiser.param_groups:
            group["lr"] = 2e-3 * 0.5 * (1.0 + math.cos(math.pi * step / steps))
        network.train()
        logits = network(x)
        probability = torch.sigmoid(logits[:, :1])
        liver = y[:, :1]
        overlap = 1.0 - (2.0 * (probability * liver).sum() + 1.0) / (probability.sum() + liver.sum() + 1.0)
        loss = F.binary_cross_entropy_with_logits(logits[:, :1], liver) + overlap
        if outputs > 1:
            loss = loss + organ_weight * F.binary_cross_entropy_with_logits(logits[:, 1:], y[:, 1:])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        running += loss.item()
        if (step + 1) % 50 == 0:
            print(f"step {step + 1}/{steps} loss {running / 50:.3f} {time.time() - started:.0f} s", flush=True)
            running = 0.0
    network.eval()
    return network


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--holdout", default="", help="comma-separated CHAOS case names to leave out")
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS),
                        help="training steps, one network for each value")
    parser.add_argument("--seed", type=int, nargs="+",
                        help="one seed for every network, or one per --steps value (default 0, 1, ...)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels", type=int, nargs="+", default=list(CHANNELS),
                        help="feature maps per level, one level per value")
    parser.add_argument("--level-offset-sd", type=float, default=LEVEL_OFFSET_SD,
                        help="sd of the random offset of the liver level, in spreads (default %(default)s)")
    parser.add_argument("--bias-field-sd", type=float, default=BIAS_FIELD_SD,
                        help="largest log-sd of a random smooth bias field (default %(default)s: none)")
    parser.add_argument("--deform-sd", type=float, default=DEFORM_SD,
                        help="largest sd of a random smooth displacement, in half-crops (default %(default)s: none)")
    parser.add_argument("--organ-weight", type=float, default=ORGAN_WEIGHT,
                        help="weight of extra kidney and spleen outputs' loss (default %(default)s: liver only)")
    parser.add_argument("--cache", type=Path, help="folder for prepared inputs, reused across folds")
    parser.add_argument("--lesion-copies", type=int, default=0,
                        help="copies of each CHAOS case with inserted lesions labelled liver (default none)")
    parser.add_argument("--lesion-values", type=float, nargs=2, default=[1.3, 2.2],
                        help="range of the inserted lesions' T2 signal, x the liver's median")
    parser.add_argument("--lesion-subcapsular-every", type=int, default=4,
                        help="one inserted lesion in this many bulges through the capsule")
    args = parser.parse_args(argv)
    try:
        seeds = network_seeds(args.steps, args.seed)
    except ValueError as error:
        parser.error(str(error))
    import torch

    torch.set_num_threads(args.threads)
    holdout = {name for name in args.holdout.split(",") if name}
    samples = _cached(args.cache, "chaos-organs", lambda: chaos_samples(args.data, set()))
    if args.lesion_copies:
        (low, high), every = args.lesion_values, args.lesion_subcapsular_every
        samples.update(_cached(args.cache, f"chaos-lesions-{args.lesion_copies}-{low}-{high}-{every}",
                               lambda: chaos_lesion_samples(args.data, args.lesion_copies, (low, high), every)))
    samples = {name: s for name, s in samples.items() if name.split("-")[0] not in holdout}
    samples.update(_cached(args.cache, "phantoms-organs", phantom_samples))
    settings = Augmentation(args.level_offset_sd, args.bias_field_sd, args.deform_sd)
    networks = [train(samples, steps, seed, tuple(args.channels), settings, args.organ_weight)
                for steps, seed in zip(args.steps, seeds)]
    args.out.mkdir(parents=True, exist_ok=True)
    export(networks, args.out / "liver_net.npz")
    card = {
        "network": f"{len(networks)} x 2.5D U-Net (probabilities averaged), channels "
                   + "-".join(map(str, args.channels)) + ", batch normalisation folded",
        "input": {"in_plane_mm": liver_net.IN_PLANE_MM, "neighbour_mm": liver_net.NEIGHBOUR_MM,
                  "neighbours": liver_net.NEIGHBOURS,
                  "units": "(intensity - liver mode) / median |body - liver mode|"},
        "training_cases": sorted(name for name in samples if not name.startswith("phantom")
                                 and "-lesions" not in name),
        **({"inserted_lesions": {"copies_per_case": args.lesion_copies, "diameters_mm": list(LESION_DIAMETERS_MM),
                                 "t2_value_range": args.lesion_values,
                                 "subcapsular_every": args.lesion_subcapsular_every, "seed": LESION_SEED}}
           if args.lesion_copies else {}),
        "held_out": sorted(holdout),
        "phantoms": {"seeds": list(PHANTOM_SEEDS), "variants": list(PHANTOM_VARIANTS), "share": PHANTOM_SHARE},
        "augmentation": {"contrast_flip_share": FLIP_SHARE, "field_of_view_cut_share": CUT_SHARE,
                         "level_offset_sd": args.level_offset_sd, "bias_field_log_sd_max": args.bias_field_sd,
                         "deform_sd_max_half_crops": args.deform_sd},
        **({"extra_outputs": {"organs": list(ORGANS[1:]), "loss_weight": args.organ_weight}}
           if args.organ_weight > 0 else {}),
        "steps": args.steps, "batch": BATCH, "crop_px": CROP, "seeds": seeds,
        "data": "CHAOS T2-SPIR (Kavur et al. 2021, doi:10.1016/j.media.2020.101950, CC BY-SA 4.0)",
        "livermets_version": __version__, "torch_version": torch.__version__,
        "trained": datetime.date.today().isoformat(),
    }
    (args.out / "liver_net.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'liver_net.npz'}")
    return 0


def _cached(folder, name: str, build) -> dict:
    """``build()`` once, kept as ``folder/name.npz`` (planes as float16) when ``folder`` is given."""
    if folder is None:
        return build()
    path = Path(folder) / f"{name}.npz"
    if path.exists():
        with np.load(path) as data:
            names = sorted({key.split("/")[0] for key in data.files})
            return {n: {"planes": data[f"{n}/planes"].astype(np.float32), "truth": data[f"{n}/truth"],
                        "outside": float(data[f"{n}/outside"])} for n in names}
    samples = build()
    Path(folder).mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"{n}/{key}": (value.astype(np.float16) if key == "planes" else np.asarray(value))
                      for n, s in samples.items() for key, value in s.items()})
    return samples


if __name__ == "__main__":
    raise SystemExit(main())
