"""Inputs: files -> a scan's image in its unit (SUVbw or HU) and its named lesion masks on the image grid.

Owns NIfTI/NRRD/MHA reading, DICOM series, DICOM SEG and RTSTRUCT, SUV conversion (one place, every input recorded)
and the geometry checks between image and mask. May import ``radiomx.errors`` and the top-level records only.
"""
