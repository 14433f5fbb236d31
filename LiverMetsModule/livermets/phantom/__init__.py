"""Synthetic teaching phantom: an abdomen with liver, vessels, metastases and a cyst, rendered on
hepatobiliary, portal-venous, arterial, T2, diffusion and CT contrasts, with exact ground truth.

    from livermets.phantom import make_phantom, write_phantom
    ph = make_phantom(seed=0, variant="small")
    write_phantom(ph, "phantom")

World frame: RAS mm, origin at the centre of the 400 (L-R) x 320 (A-P) x 240 (S-I) mm field of view.
Modules: ``shapes`` (primitives), ``liver`` (surface), ``vessels`` (trees), ``lesions`` (placement),
``anatomy`` (materials and layers), ``couinaud`` (segments), ``raster`` (painting with partial volume),
``render`` (intensities), ``noise`` (bias and noise), ``truth`` (label maps and legend), ``build`` and
``writer``.
"""

from livermets.phantom.build import Phantom, make_phantom, phantom_geometry
from livermets.phantom.render import PHANTOM_SEQUENCES
from livermets.phantom.writer import write_phantom

__all__ = ["PHANTOM_SEQUENCES", "Phantom", "make_phantom", "phantom_geometry", "write_phantom"]
