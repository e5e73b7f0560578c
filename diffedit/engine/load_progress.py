"""How far loading the weights has got: transformers' "Loading weights" loop, counted tensor by tensor.

transformers walks the checkpoint's tensors in one ``tqdm`` loop; its ``set_tqdm_hook`` lets us wrap that
loop (whether or not its progress bars are shown) and report ``(tensors done, tensors in all)``. A
transformers without the hook loads as before, with no percentage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

WeightsProgress = Callable[[int, int], None]  # (tensors loaded, tensors in all)
LOOP_DESCRIPTION = "Loading weights"  # the desc transformers gives its weight-loading loop


def whole_percents(report: WeightsProgress) -> WeightsProgress:
    """``report``, called only when the whole percentage changes: at most 101 reports, however many
    tensors, and each one further on than the last."""
    last = [-1]

    def tell(done: int, total: int) -> None:
        percent = done * 100 // total if total else 100
        if percent != last[0]:
            last[0] = percent
            report(done, total)

    return tell


class _CountingLoop:
    """Stands in for the loop's progress bar: iterates as it would and reports each whole percent."""

    def __init__(self, bar: Any, items: Any, total: int, report: WeightsProgress) -> None:
        self._bar, self._items, self._total = bar, items, total
        self._report = whole_percents(report)

    def _tell(self, done: int) -> None:
        self._report(done, self._total)

    def __iter__(self) -> Iterator[Any]:
        self._tell(0)
        update = getattr(self._bar, "update", None)  # a shown bar still moves
        for done, item in enumerate(self._items, start=1):
            yield item
            if update is not None:
                update(1)
            self._tell(done)

    def __enter__(self) -> _CountingLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        close = getattr(self._bar, "close", None)
        if close is not None:
            close()

    def __getattr__(self, name: str) -> Any:  # update(), set_postfix() and the rest: the real bar's
        return getattr(self._bar, name)


@contextmanager
def weights_progress(report: WeightsProgress | None) -> Iterator[None]:
    """Within the block, transformers' weight loading calls ``report(done, total)`` as tensors load."""
    from transformers.utils import logging as hf_logging

    set_hook = getattr(hf_logging, "set_tqdm_hook", None)
    if report is None or set_hook is None:
        yield
        return

    def hook(factory: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bar = factory(*args, **kwargs)
        items = args[0] if args else kwargs.get("iterable")
        if kwargs.get("desc") != LOOP_DESCRIPTION or items is None:
            return bar
        total = kwargs.get("total") or (len(items) if hasattr(items, "__len__") else 0)
        return _CountingLoop(bar, items, int(total), report)

    previous = set_hook(hook)
    try:
        yield
    finally:
        set_hook(previous)


def loading_line(what: str, done: int, total: int) -> str:
    """The status line while weights load: ``Loading the bundled demo model: 45 %``."""
    return f"Loading {what}: {done * 100 // total if total else 100} %"
