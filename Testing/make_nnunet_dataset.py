"""Write an nnU-Net v2 raw dataset of LiverMets phantoms (hbp; classes liver and tumor), to train
the small model the optional test ``test_a_real_nnunet_model_runs_through_segment`` runs.

Usage (nnunetv2 installed; a few minutes on a CPU with the plan shrunk as below)::

    python Testing/make_nnunet_dataset.py --out $nnUNet_raw/Dataset501_LiverMetsPhantom
    nnUNetv2_plan_and_preprocess -d 501 -c 3d_fullres
    # optional, for a CPU: in $nnUNet_preprocessed/Dataset501_LiverMetsPhantom/nnUNetPlans.json set the
    # 3d_fullres patch_size to [48, 64, 64] and features_per_stage to [8, 16, 32, 64, 64]
    nnUNetv2_train 501 3d_fullres 0 -tr nnUNetTrainer_1epoch -device cpu
    LIVERMETS_NNUNET_MODEL=$nnUNet_results/Dataset501_LiverMetsPhantom/nnUNetTrainer_1epoch__nnUNetPlans__3d_fullres \\
        python -m pytest Testing/core/test_nnunet_engine.py

The test segments phantom seed 7; the dataset holds seeds 0 to 5 (``small`` variant, 3 mm).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from livermets.geometry import Volume
from livermets.imageio import write_image
from livermets.phantom import make_phantom


def write_dataset(out: Path, seeds=range(6)) -> int:
    """Images ``imagesTr/phNNN_0000.nii.gz``, labels ``labelsTr/phNNN.nii.gz`` (0 background, 1 liver,
    2 tumor) and ``dataset.json`` in ``out``; returns the number of cases."""
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        phantom = make_phantom(seed, variant="small", sequences=("hbp",))
        labels = np.where(np.asarray(phantom.lesions) > 0, 2, np.asarray(phantom.liver) > 0).astype(np.uint8)
        write_image(Volume(np.asarray(phantom.images["hbp"], dtype=np.float32), phantom.geometry),
                    out / "imagesTr" / f"ph{seed:03d}_0000.nii.gz")
        write_image(Volume(labels, phantom.geometry), out / "labelsTr" / f"ph{seed:03d}.nii.gz")
    card = {"channel_names": {"0": "hbp"}, "labels": {"background": 0, "liver": 1, "tumor": 2},
            "numTraining": len(seeds), "file_ending": ".nii.gz"}
    (out / "dataset.json").write_text(json.dumps(card, indent=1), encoding="utf-8")
    return len(seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the dataset folder, e.g. $nnUNet_raw/Dataset501_X")
    print(f"{write_dataset(parser.parse_args().out)} cases written")


if __name__ == "__main__":
    main()
