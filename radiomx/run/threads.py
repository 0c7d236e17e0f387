"""threadpoolctl's ``threadpool_limits``, imported without threadpoolctl's one side effect on the importing process.

Why: importing threadpoolctl runs ``os.environ.setdefault("KMP_DUPLICATE_LIB_OK", "True")`` (threadpoolctl.py, for
scikit-learn's nested OpenMP runtimes), and a notebook that called ``radiomx.extract()`` kept that variable, which
tells Intel's OpenMP to tolerate a second copy of itself for the rest of the session. radiomx only inspects and
limits the thread pools already loaded, and loads no OpenMP runtime of its own, so the variable is put back as it
was right after the import: nothing else is patched, and a process that set the variable itself keeps its value.
"""

from __future__ import annotations

import os

VARIABLE = "KMP_DUPLICATE_LIB_OK"

_before = os.environ.get(VARIABLE)
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402 - the import whose side effect is undone

if _before is None:
    os.environ.pop(VARIABLE, None)
else:
    os.environ[VARIABLE] = _before

__all__ = ["threadpool_info", "threadpool_limits"]
