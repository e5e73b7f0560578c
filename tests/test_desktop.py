"""Desktop integration: the packaged entry, metainfo and icons validate, and install/uninstall for a user."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from diffedit import desktop
from diffedit.resources import APP_ID, icon_path

ROOT = Path(__file__).resolve().parents[1]


def needs_tool(name: str, package: str) -> str:
    """The tool's path; the test skips, naming the Debian package, only where the tool is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {package}; .ci/run installs it)")
    return path


def validate_entry(path: Path) -> None:
    tool = needs_tool("desktop-file-validate", "desktop-file-utils")
    run = subprocess.run([tool, str(path)], capture_output=True, text=True)
    # Hints are advice; errors and warnings fail.
    problems = [line for line in run.stdout.splitlines() if ": error:" in line or ": warning:" in line]
    assert run.returncode == 0 and not problems, run.stdout + run.stderr


def test_packaged_desktop_entry_validates_and_opens_markdown() -> None:
    entry = desktop.desktop_entry_source()
    validate_entry(entry)
    keys = dict(line.split("=", 1) for line in entry.read_text().splitlines() if "=" in line)
    assert "text/markdown" in keys["MimeType"].split(";")
    assert keys["Icon"] == APP_ID
    assert keys["Exec"] == "diffedit %f"


def test_metainfo_validates() -> None:
    tool = needs_tool("appstreamcli", "appstream")
    run = subprocess.run(
        [tool, "validate", "--no-net", str(desktop.metainfo_source())], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    text = desktop.metainfo_source().read_text()
    assert f'<launchable type="desktop-id">{APP_ID}.desktop</launchable>' in text
    for shot in ("rewrite-animation.png", "dark-preview-history.png", "rewrite-committed.png"):
        assert f"docs/screenshots/{shot}</image>" in text
        assert (ROOT / "docs" / "screenshots" / shot).is_file()  # the screenshots named exist in the repo


def test_icon_pngs_are_the_svg_at_each_size(qtbot: QtBot) -> None:
    from PySide6.QtGui import QImage
    from PySide6.QtSvg import QSvgRenderer

    assert QSvgRenderer(str(icon_path())).isValid()
    for size in desktop.ICON_SIZES:
        image = QImage(str(icon_path(size)))
        assert (image.width(), image.height()) == (size, size)
        assert image.hasAlphaChannel() and image.pixelColor(size // 2, size // 2).alpha() == 255


def test_install_writes_under_xdg_data_home_and_uninstall_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    command = [str(tmp_path / "my venv" / "bin" / "diffedit")]
    written = desktop.install(command=command)
    place = desktop.Placement(tmp_path / "data")
    assert sorted(written) == sorted(place.files())
    assert all(p.is_file() for p in written)
    assert not (tmp_path / "home").exists()  # nothing outside the data home
    entry = place.desktop_entry.read_text()
    assert f'Exec="{command[0]}" %f' in entry  # the path has a space: quoted as the spec says
    assert "MimeType=text/markdown;" in entry
    validate_entry(place.desktop_entry)
    assert place.scalable_icon.read_bytes() == icon_path().read_bytes()
    assert place.png_icon(48).read_bytes() == icon_path(48).read_bytes()

    removed = desktop.uninstall()
    assert sorted(removed) == sorted(written)
    assert not any(p.exists() for p in written)


def test_the_documented_command_defaults_to_home_local_share(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-m", "diffedit.desktop", "install"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    share = tmp_path / ".local" / "share"
    entry = (share / "applications" / f"{APP_ID}.desktop").read_text()
    exec_line = next(line for line in entry.splitlines() if line.startswith("Exec="))
    assert "diffedit" in exec_line and exec_line.endswith(" %f")
    assert (share / "metainfo" / f"{APP_ID}.metainfo.xml").is_file()
    assert (share / "icons" / "hicolor" / "256x256" / "apps" / f"{APP_ID}.png").is_file()
    assert str(share) in run.stdout
    run = subprocess.run(
        [sys.executable, "-m", "diffedit.desktop", "uninstall"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0 and "Removed 10 files" in run.stdout, run.stdout + run.stderr
    assert not (share / "applications" / f"{APP_ID}.desktop").exists()


def test_launcher_prefers_this_environments_script() -> None:
    command = desktop.launcher()
    assert command[0].endswith(("diffedit", "diffedit.exe")) or command[1:] == ["-m", "diffedit"]


def test_exec_quoting() -> None:
    assert desktop.quote_exec_arg("/usr/bin/diffedit") == "/usr/bin/diffedit"
    assert desktop.quote_exec_arg('/a b/$x"') == '"/a b/\\$x\\""'


def test_the_app_uses_the_icon_as_window_icon(qtbot: QtBot) -> None:
    from PySide6.QtCore import QSize
    from PySide6.QtWidgets import QApplication

    from diffedit.app import open_window

    app, window = open_window(["--no-model"])
    qtbot.addWidget(window)
    window.documents.confirm_discard = lambda: True  # type: ignore[method-assign]
    assert QApplication.desktopFileName() == APP_ID
    sizes = app.windowIcon().availableSizes()
    assert QSize(16, 16) in sizes and QSize(256, 256) in sizes
    assert window.windowIcon().cacheKey() == app.windowIcon().cacheKey()
