"""Store: the output folder's tables (schema, keyed upserts, atomic commits), its lock and its fixed places.

``tables`` (the ``Store`` class: commits, reads, the small tables), ``schema`` (features schema and conversion),
``parts`` (the live bounded parts commits write), ``publish`` (the one file per tracer readers open), ``readers``
(tables as pandas), ``atomic``, ``lock``, ``outdir``, ``runlog`` (which cohort and options the last run used),
``acknowledged``, ``views``. Layout and the reasons: docs/storage.md.

The bottom of the stack: imports only the top-level records and errors. ``outdir`` and ``lock`` import no table
library, so planning a fresh OUT stays light.
"""
