"""Discover: a cohort folder (default layout, BIDS-PET or a DICOM export) -> ``Scan`` records, without reading any
image (of an export, headers only).

Owns name patterns, ``radiomx.toml``, BIDS entities and participants/sessions TSVs, an export's header index and
linking, and where a scan's organ segmentations are (``organs``). May import ``radiomx.inputs.paths`` (what a file
is, by its name), ``radiomx.inputs.series_choice`` (which series is the image), ``radiomx.inputs.organ_names`` (the
organ vocabulary) and the top-level records; never ``run``, ``features``, ``store`` or ``cli``.
"""
