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

:func:`exit_now` ends such a process without the interpreter's teardown: once the command has returned and
its output is flushed, deallocating torch's thousands of modules one by one took 0.2-0.3 s of a 2 s
``diffedit rewrite`` (docs/benchmarks.md), to free memory the operating system frees at once. The exit
handlers (``atexit``: logging, temporary files, multiprocessing) still run first.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_loaded = False  # a load phase completed: this is a one-shot process that holds a model


@contextmanager
def load_phase() -> Iterator[None]:
    """No cyclic GC inside; on leaving (also on an error), what exists is frozen and the GC is as it was."""
    global _loaded
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        _loaded = True
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def exit_now(code: int) -> None:
    """End the process with ``code`` now, skipping the interpreter's teardown, if a model was loaded in a
    load phase and nothing would be lost: output flushed, exit handlers run, no compiler worker processes
    (``torch._inductor``) around. Otherwise return, and the caller exits as usual."""
    if not _loaded or "torch._inductor" in sys.modules:
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):  # a closed pipe: the usual exit reports it
        return
    atexit._run_exitfuncs()
    os._exit(code)
