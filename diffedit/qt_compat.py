"""Guard against a refcount bug in PySide6 6.12 on Python < 3.12.

PySide6 6.12's abi3 wheels return ``None``, ``True`` and ``False`` without taking a reference, which is
harmless where those objects are immortal (Python 3.12+) but on 3.11 every ``processEvents()`` or
``Signal.emit()`` drops one reference, and after a few thousand calls the interpreter aborts with
"deallocating None". Giving the three singletons a huge reference count makes them immortal in effect.
The proper fix is a dependency pin (PySide6 < 6.12 on Python 3.11); this keeps a running app safe meanwhile.
"""

from __future__ import annotations

import ctypes
import sys

import PySide6

_EXTRA_REFS = 1 << 40  # decades of leaked decrefs; far below Py_ssize_t's range


def needs_guard(python: tuple[int, int] = sys.version_info[:2], pyside: str = PySide6.__version__) -> bool:
    return python < (3, 12) and pyside.startswith("6.12.")


def immortalize_singletons() -> bool:
    """Apply the guard once when this PySide6/Python pair needs it; True if applied (now or before)."""
    if not needs_guard():
        return False
    if getattr(sys, "_diffedit_singletons_guarded", False):
        return True
    for obj in (None, True, False):
        ref = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is the first field of every object
        ref.value += _EXTRA_REFS
    sys._diffedit_singletons_guarded = True  # type: ignore[attr-defined]
    return True


immortalize_singletons()
