"""Store: the output folder's tables (schema, keyed upserts, atomic commits), its lock and its fixed places.

``tables`` (the ``Store`` class: commits, reads, the small tables), ``schema`` (features schema and conversion),
``parts`` (the live bounded parts commits write), ``publish`` (the one file per tracer readers open), ``atomic``,
``lock``, ``outdir``. Layout and the reasons: docs/storage.md.

The bottom of the stack: imports only the top-level records and errors. ``outdir`` and ``lock`` import no table
library, so planning a fresh OUT stays light.
"""
