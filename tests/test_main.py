"""``diffedit`` itself: help, version, and what a first argument that is neither command nor file does."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from diffedit import __main__ as entry
from diffedit.cli import build_parser


def _program(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "diffedit", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_apps_options_and_the_commands(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        entry.main([flag])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("FILE", "--model", "--no-model", "--device", "--version"):
        assert option in out, option
    for command in ("rewrite", "draft", "blocks", "models", "download"):
        assert f"\n  {command} " in out, command


def test_the_commands_routed_to_the_cli_are_the_clis_commands() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(entry.CLI_COMMANDS) == set(sub.choices or ())


def test_version_prints_the_installed_version_and_exits_0() -> None:
    proc = _program("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"diffedit {importlib.metadata.version('diffedit')}"


def test_a_mistyped_command_says_so_and_suggests_the_closest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert entry.main(["modles"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "no command" in err and "modles" in err and "diffedit models" in err
    assert list(tmp_path.iterdir()) == []  # no editor, no new file


def test_a_name_far_from_any_command_gets_no_suggestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert entry.main(["zzzz"]) == 2
    err = capsys.readouterr().err
    assert "no command" in err and "did you mean" not in err and ".md" in err


@pytest.mark.parametrize("name", ["modles", "new.md", "new.markdown", "new.txt"])
def test_an_existing_file_or_a_markdown_name_opens_the_editor(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if name == "modles":
        (tmp_path / name).write_text("# a file that happens to be called modles\n", encoding="utf-8")
    opened: list[list[str]] = []

    def fake_app(argv: list[str]) -> int:  # the editor itself is tested in tests/ui
        opened.append(argv)
        return 0

    monkeypatch.setattr(entry, "run_app", fake_app)
    assert entry.main([name]) == 0
    assert opened == [[name]]
