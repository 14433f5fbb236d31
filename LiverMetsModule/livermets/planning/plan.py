"""One resection plan (plane, segments or wedges) with FLR, and ``plan_result_dir`` for a result folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from livermets.errors import InputError
from livermets.files import write_json
from livermets.measure.io import read_result_dir
from livermets.planning.flr import flr_summary
from livermets.planning.resection import PlaneResection, ResectionModel, name_resection
from livermets.progress import ProgressCallback, report


def make_plan(model: ResectionModel, *, segments: Optional[Sequence[int]] = None,
              plane: Optional[Sequence[float]] = None, wedges: Optional[dict] = None,
              height_cm: Optional[float] = None, weight_kg: Optional[float] = None,
              liver_condition: Optional[str] = None) -> tuple[dict, np.ndarray]:
    """Evaluate exactly one kind of plan; returns (plan dict, resected liver mask on the full grid).

    ``plane`` is (PX, PY, PZ, NX, NY, NZ) in RAS mm, the normal pointing to the resected side;
    ``segments`` Couinaud numbers; ``wedges`` lesion id -> margin (mm).
    """
    chosen = [name for name, value in (("segments", segments), ("plane", plane), ("wedge", wedges)) if value]
    if len(chosen) != 1:
        raise InputError("choose exactly one of --segments, --plane or --wedge")
    if plane:
        if len(plane) != 6:
            raise InputError(f"--plane needs six numbers PX,PY,PZ,NX,NY,NZ (RAS mm), got {len(plane)}")
        planner = PlaneResection(model)
        plan = planner.update(plane[:3], plane[3:])
        plan["kind"], plan["name"] = "plane", "plane resection"
        resected = planner.resected_region(plane[:3], plane[3:])
    elif segments:
        region = model.segments_region(segments)
        plan = model.evaluate_region(region)
        plan.update({"kind": "segments", "name": name_resection(segments),
                     "segments": sorted(int(s) for s in set(segments))})
        resected = model.full_grid(region)
    else:
        region = model.wedge_region({int(k): float(v) for k, v in wedges.items()})
        plan = model.evaluate_region(region)
        plan.update({"kind": "wedge", "name": "wedge resection",
                     "wedges": [{"lesion": int(k), "margin_mm": float(v)} for k, v in wedges.items()]})
        resected = model.full_grid(region)
    plan.update(flr_summary(plan["remnant_volume_ml"], plan["total_functional_volume_ml"], height_cm=height_cm,
                            weight_kg=weight_kg, liver_condition=liver_condition))
    return plan, resected


def plan_result_dir(result_dir, *, segments: Optional[Sequence[int]] = None,
                    plane: Optional[Sequence[float]] = None, wedges: Optional[dict] = None,
                    height_cm: Optional[float] = None, weight_kg: Optional[float] = None,
                    liver_condition: Optional[str] = None, progress: Optional[ProgressCallback] = None) -> dict:
    """Plan on a result folder; writes ``plan.json``, ``remnant.nii.gz`` and ``resected.nii.gz`` (0/1).

    Segment plans read ``couinaud.nii.gz`` (written by ``livermets measure``).
    """
    from livermets.imageio import write_label

    started = time.monotonic()
    folder = Path(result_dir)
    report(progress, 0.0, "reading the result files")
    arrays = read_result_dir(folder, with_couinaud=bool(segments))
    report(progress, 0.2, "preparing the liver model")
    model = ResectionModel(arrays.liver, arrays.lesions, arrays.labels, arrays.geometry,
                           couinaud=arrays.couinaud, ivc=arrays.ivc)
    report(progress, 0.6, "evaluating the plan")
    plan, resected = make_plan(model, segments=segments, plane=plane, wedges=wedges, height_cm=height_cm,
                               weight_kg=weight_kg, liver_condition=liver_condition)
    write_label(arrays.liver & ~resected, arrays.geometry, folder / "remnant.nii.gz")
    write_label(resected, arrays.geometry, folder / "resected.nii.gz")
    plan.update({"remnant_file": "remnant.nii.gz", "resected_file": "resected.nii.gz",
                 "seconds": round(time.monotonic() - started, 3)})
    write_json(folder / "plan.json", plan)
    report(progress, 1.0, f"{plan['name']}: FLR {plan['flr_pct']:.1f} %")
    return plan
