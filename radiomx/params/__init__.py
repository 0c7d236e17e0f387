"""Params: versioned parameter files (``params/<tracer>/v<N>.yaml``) -> validated settings with their sha256.

Released files never change (``params/LOCK.json``). May import the top-level records, tracers and fingerprint only.
"""
