"""The fence rule's old address, kept until ``ui/highlighter.py`` and ``document/session.py`` import it from
``diffedit.document.textwindow`` (its one definition); then this module goes."""

from diffedit.document.textwindow import fence_closes, fence_opener

__all__ = ["fence_closes", "fence_opener"]
