"""The nnU-Net model-folder engine: how a model's classes and channels are read, how its labels
become LiverMets structures, what a user is told when it cannot run, and (where nnunetv2 and a
trained model folder are present) a real run through ``segment``."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest
from livermets.errors import InputError
from livermets.geometry import Geometry, Volume
from livermets.segmentation.engines import get_engine
from livermets.segmentation.lesions import describe_instances
from livermets.segmentation.nnunet_engine import (
    channel_images,
    read_model,
    split_prediction,
    structures_from_labels,
)
from livermets.segmentation.pipeline import segment


def test_classes_are_read_by_name_in_both_label_formats():
    # nnU-Net v2 (name -> value), as a LiTS-trained model has them
    assert structures_from_labels({"background": 0, "liver": 1, "tumor": 2}) == {"liver": (1,), "lesion": (2,)}
    # the Decathlon's (value -> name): the hepatic-vessel task's "Vessel" cannot tell the trees apart
    assert structures_from_labels({"0": "background", "1": "Vessel", "2": "Tumour"}) == {"lesion": (2,)}
    named = structures_from_labels({"background": 0, "Liver": 1, "liver_metastasis": 2, "cyst_lesion": 3,
                                    "portal_vein_and_splenic_vein": 4, "hepatic_veins": 5,
                                    "inferior_vena_cava": 6, "spleen": 7})
    assert named == {"liver": (1,), "lesion": (2, 3), "portal": (4,), "hepatic": (5,), "ivc": (6,)}
    with pytest.raises(InputError, match="region-based"):
        structures_from_labels({"background": 0, "liver": [1, 2], "tumor": 2})


def test_channels_are_matched_to_images_by_contrast_name():
    assert channel_images(["CT"], ["ct"]) == [0]
    assert channel_images(["T2", "hbp"], ["hbp", "t2"]) == [1, 0]
    assert channel_images(["MRI"], ["t2", "hbp"]) == [0]  # one channel of no known contrast: the first image
    with pytest.raises(InputError, match="channels T2, ADC.*ADC"):
        channel_images(["T2", "ADC"], ["t2"])
    with pytest.raises(InputError, match="no image given is hbp"):
        channel_images(["hbp"], ["t2"])


def test_model_labels_become_structures_lesions_largest_first_scored_by_probability():
    segmentation = np.zeros((12, 20, 20), dtype=np.uint8)
    segmentation[2:10, 2:18, 2:18] = 1  # liver
    segmentation[4:6, 4:6, 4:6] = 2  # small lesion (8 voxels)
    segmentation[5:9, 10:14, 10:14] = 2  # large lesion (64 voxels)
    segmentation[0, 0:3, 0:3] = 3  # portal vein
    probabilities = np.zeros((4,) + segmentation.shape, dtype=np.float32)
    probabilities[2][segmentation == 2] = 0.6
    probabilities[2, 5:9, 10:14, 10:14] = 0.9
    parts = split_prediction(segmentation, probabilities, {"liver": (1,), "lesion": (2,), "portal": (3,)})
    assert parts["liver"].sum() == np.count_nonzero(np.isin(segmentation, [1, 2]))  # lesions belong to the organ
    assert int(parts["lesions"].max()) == 2
    assert (parts["lesions"] == 1).sum() == 64 and (parts["lesions"] == 2).sum() == 8
    assert parts["scores"] == [pytest.approx(0.9), pytest.approx(0.6)]
    assert parts["portal"].sum() == 9 and "hepatic" not in parts
    assert split_prediction(segmentation, None, {"lesion": (2,)})["scores"] == [1.0, 1.0]


def test_instances_drawn_elsewhere_get_the_lesion_table():
    geometry = Geometry((10, 30, 30), (2.0, 1.0, 1.0), (0.0, 0.0, 0.0))  # spacing i, j, k (mm)
    liver = np.zeros(geometry.shape, dtype=bool)
    liver[1:9, 2:28, 2:28] = True
    instances = np.zeros(geometry.shape, dtype=np.uint16)
    instances[4:6, 5:15, 5:10] = 1
    t2 = np.where(liver, 100.0, 0.0).astype(np.float32)
    t2[instances == 1] = 400.0  # fluid-bright: a likely cyst on T2
    found = describe_instances(instances, [0.8], {"t2": t2}, liver, geometry)
    row = found.table[0]
    assert row["id"] == 1 and row["volume_ml"] == pytest.approx(100 * 2.0 / 1000)
    assert row["longest_axial_diameter_mm"] == pytest.approx(np.hypot(9 * 1.0, 4 * 2.0) + 1.5, abs=0.01)
    assert found.likely_cyst == [True] and row["score"] == 0.8
    with pytest.raises(InputError, match="2 scores given for 1"):
        describe_instances(instances, [0.8, 0.5], {"t2": t2}, liver, geometry)


def test_an_engine_that_cannot_run_says_why(tmp_path):
    with pytest.raises(InputError, match="name the trained model folder"):
        get_engine("nnunet")
    with pytest.raises(InputError, match="does not exist"):
        get_engine(f"nnunet:{tmp_path / 'missing'}")
    with pytest.raises(InputError, match="unknown engine"):
        get_engine("classical:extra")
    folder = tmp_path / "model"
    folder.mkdir()
    if importlib.util.find_spec("nnunetv2") is None:
        with pytest.raises(InputError, match="pip install nnunetv2"):
            get_engine(f"nnunet:{folder}")
    else:
        with pytest.raises(InputError, match="no trained fold"):
            get_engine(f"nnunet:{folder}")
    with pytest.raises(InputError, match="no dataset.json"):
        read_model(folder)
    (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"},
                                                     "labels": {"background": 0, "kidney": 1}}))
    with pytest.raises(InputError, match="no class LiverMets can use"):
        read_model(folder)


MODEL = os.environ.get("LIVERMETS_NNUNET_MODEL", "")


@pytest.mark.skipif(importlib.util.find_spec("nnunetv2") is None or not MODEL,
                    reason="needs nnunetv2 and a trained liver model folder in LIVERMETS_NNUNET_MODEL "
                           "(channel hbp, classes liver and tumor), e.g. one trained on LiverMets phantoms")
def test_a_real_nnunet_model_runs_through_segment():
    from livermets.phantom import make_phantom

    ph = make_phantom(7, variant="small", sequences=("hbp",))
    result = segment([Volume(np.asarray(ph.images["hbp"]), ph.geometry)], ["hbp"], engine=f"nnunet:{MODEL}")
    truth = np.asarray(ph.liver) > 0
    liver = result.liver > 0
    assert 2 * (liver & truth).sum() / (liver.sum() + truth.sum()) > 0.8
    assert result.engine == "nnunet" and "nnunet" in result.timings_s
    assert any("from the model" in warning for warning in result.warnings)
    assert all(0.0 < row["score"] <= 1.0 for row in result.lesion_table)
    assert len(result.lesion_table) == int(result.lesions.max())
