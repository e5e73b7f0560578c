"""Weight-loading progress: transformers' loop counted through its tqdm hook, and the hook put back after."""

from __future__ import annotations

from pathlib import Path

from transformers.utils import logging as hf_logging

from diffedit.engine.load_progress import loading_line, weights_progress
from diffedit.engine.loader import load_model


def test_a_real_load_reports_each_whole_percent_once_and_restores_the_hook(tiny_checkpoint: Path) -> None:
    before = hf_logging.set_tqdm_hook(None)
    hf_logging.set_tqdm_hook(before)
    seen: list[tuple[int, int]] = []
    load_model(tiny_checkpoint, device="cpu", on_weights=lambda done, total: seen.append((done, total)))
    total = seen[0][1]
    assert total > 1 and seen[0] == (0, total) and seen[-1] == (total, total)
    percents = [done * 100 // total for done, _ in seen]
    assert percents == sorted(set(percents))  # forward only, each percent once
    assert hf_logging.set_tqdm_hook(before) is before  # the hook in place is the one from before the load


def test_other_loops_pass_through() -> None:
    seen: list[tuple[int, int]] = []
    with weights_progress(lambda d, t: seen.append((d, t))):
        bar = hf_logging.tqdm(range(3), desc="Something else")
        assert list(bar) == [0, 1, 2]
    assert seen == []


def test_loading_line() -> None:
    assert loading_line("diffedit-demo", 61, 136) == "Loading diffedit-demo: 44 %"
