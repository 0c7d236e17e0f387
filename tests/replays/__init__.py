"""Equivalence tests of ``radiomx.features.replays``: each replay against the library function it reproduces."""
