"""Running the CLI in-process from a test."""

from __future__ import annotations

import pytest

from diffedit.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``diffedit ARGS`` in this process: its exit code, stdout and stderr."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err
