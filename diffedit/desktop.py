"""Install diffedit into the user's desktop: menu entry, ``.md`` association, icons and AppStream metainfo.

    python -m diffedit.desktop install      # into $XDG_DATA_HOME (default ~/.local/share)
    python -m diffedit.desktop uninstall

The files are the package's own (``diffedit/resources/desktop``, ``diffedit/resources/icons``); the
installed desktop entry starts the ``diffedit`` this Python runs, so an install from a virtual
environment opens that environment's editor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from diffedit.resources import APP_ID, icon_path, resources_dir

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` where it is unset or not absolute (the XDG spec's rule)."""
    env = os.environ.get("XDG_DATA_HOME", "")
    return Path(env) if env and Path(env).is_absolute() else Path.home() / ".local" / "share"


def desktop_entry_source() -> Path:
    return resources_dir() / "desktop" / f"{APP_ID}.desktop"


def metainfo_source() -> Path:
    return resources_dir() / "desktop" / f"{APP_ID}.metainfo.xml"


def launcher() -> list[str]:
    """The command that starts this installation's editor: its ``diffedit`` script, else ``python -m``."""
    scripts = Path(sys.executable).parent
    for name in ("diffedit", "diffedit.exe"):
        if (scripts / name).is_file():
            return [str(scripts / name)]
    found = shutil.which("diffedit")
    return [found] if found else [sys.executable, "-m", "diffedit"]


def quote_exec_arg(arg: str) -> str:
    """One argument of an ``Exec`` key (Desktop Entry spec: double quotes, with \\ " ` $ escaped)."""
    if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`="):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


def desktop_entry(command: list[str]) -> str:
    """The packaged desktop entry with ``Exec``/``TryExec`` pointing at ``command``."""
    lines = []
    for line in desktop_entry_source().read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = "Exec=" + " ".join(quote_exec_arg(a) for a in command) + " %f"
        elif line.startswith("TryExec="):
            line = f"TryExec={command[0]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Placement:
    """Where each installed file goes under a data home."""

    root: Path

    @property
    def desktop_entry(self) -> Path:
        return self.root / "applications" / f"{APP_ID}.desktop"

    @property
    def metainfo(self) -> Path:
        return self.root / "metainfo" / f"{APP_ID}.metainfo.xml"

    @property
    def scalable_icon(self) -> Path:
        return self.root / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"

    def png_icon(self, size: int) -> Path:
        return self.root / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"

    def files(self) -> list[Path]:
        return [self.desktop_entry, self.metainfo, self.scalable_icon, *map(self.png_icon, ICON_SIZES)]


def _refresh_caches(place: Placement) -> None:
    """Tell the desktop about the new entry and icons where the tools exist (no tool: it notices later)."""
    for tool, flags, target in (
        ("update-desktop-database", ["-q"], place.root / "applications"),
        ("gtk-update-icon-cache", ["-qtf"], place.root / "icons" / "hicolor"),
    ):
        if shutil.which(tool) and target.is_dir():
            subprocess.run([tool, *flags, str(target)], check=False, capture_output=True)


def install(root: Path | None = None, command: list[str] | None = None) -> list[Path]:
    """Write the desktop entry, metainfo and icons under ``root`` (default: the data home); the paths."""
    place = Placement(root or data_home())
    place.desktop_entry.parent.mkdir(parents=True, exist_ok=True)
    place.desktop_entry.write_text(desktop_entry(command or launcher()), encoding="utf-8")
    pairs = [(metainfo_source(), place.metainfo), (icon_path(), place.scalable_icon)]
    pairs += [(icon_path(size), place.png_icon(size)) for size in ICON_SIZES]
    for source, target in pairs:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    _refresh_caches(place)
    return place.files()


def uninstall(root: Path | None = None) -> list[Path]:
    """Remove what ``install`` wrote under ``root``; the paths removed."""
    place = Placement(root or data_home())
    removed = []
    for path in place.files():
        if path.is_file():
            path.unlink()
            removed.append(path)
    _refresh_caches(place)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diffedit.desktop",
        description="Add diffedit to the desktop's menus and open .md files with it (for this user).",
    )
    parser.add_argument("action", choices=("install", "uninstall"))
    args = parser.parse_args(argv)
    root = data_home()
    if args.action == "install":
        written = install(root)
        print(f"Installed diffedit's desktop entry, icons and metainfo under {root} ({len(written)} files).")
        print(f"To make it the default for Markdown: xdg-mime default {APP_ID}.desktop text/markdown")
    else:
        removed = uninstall(root)
        print(f"Removed {len(removed)} files of diffedit's desktop integration from {root}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
