"""Start-up of a one-shot process (``diffedit rewrite``): imports and the model load without the cyclic GC.

Importing torch and transformers' DiffusionGemma classes creates a few hundred thousand objects that live
until the process exits. While they are created, CPython's cyclic garbage collector keeps scanning them (a
full collection each time the older generations fill up), and at exit it scans them all again before the
interpreter is torn down. Measured on the 2-core machine (docs/benchmarks.md), that scanning was about a
third of the CPU time of the imports, and the exit of the process took longer than the rewrite itself.

:func:`load_phase` switches the collector off while the imports and the load run and then *freezes* what
they built (:func:`gc.freeze`: moved to a generation the collector never scans), so neither later
collections nor the exit walk the imported modules and the model again. Objects created afterwards (the
rewrite's) are collected as usual. The price is that cyclic garbage made during the load stays allocated
until the process exits, a few MB; so this is for processes that load one model and end, not for the app.
Nothing computed changes: the collector only frees memory.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def load_phase() -> Iterator[None]:
    """No cyclic GC inside; on leaving (also on an error), what exists is frozen and the GC is as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
