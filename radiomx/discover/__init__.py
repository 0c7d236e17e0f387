"""Discover: a cohort folder (default layout or BIDS-PET) -> ``Scan`` records, without reading any image.

Owns name patterns, ``radiomx.toml``, BIDS entities and participants/sessions TSVs. May import ``radiomx.inputs.paths``
(what a file is, by its name) and the top-level records; never ``run``, ``features``, ``store`` or ``cli``.
"""
