"""PySide6 widgets, in rooms: ``editing/``, ``files/``, ``rewrite/``; ``main_window.py`` wires them.

Importing this package first applies the PySide6 6.12 / Python 3.11 guard.
"""

from diffedit import qt_compat as _qt_compat  # noqa: F401
