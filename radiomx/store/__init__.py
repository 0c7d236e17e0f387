"""Store: the output folder's tables (schema, keyed upserts, atomic commits), its lock and its fixed places.

The bottom of the stack: imports only the top-level records and errors. ``outdir`` and ``lock`` import no table
library, so planning a fresh OUT stays light.
"""
