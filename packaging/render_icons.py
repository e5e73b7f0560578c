"""Render the application icon's PNG sizes from its SVG with Qt's QSvgRenderer.

    python packaging/render_icons.py

Writes ``diffedit/resources/icons/hicolor/NxN/apps/<app id>.png`` for each of ``ICON_SIZES``; run it
after changing the SVG and commit the PNGs (desktops without SVG support and small window icons use them).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one

from diffedit.desktop import ICON_SIZES
from diffedit.resources import icon_path


def render(svg: Path, size: int, out: Path) -> None:
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not an SVG Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out), "PNG"):
        raise SystemExit(f"could not write {out}")


def main() -> int:
    _app = QGuiApplication.instance() or QGuiApplication(["render_icons", "-platform", "offscreen"])
    svg = icon_path()
    for size in ICON_SIZES:
        out = icon_path(size)
        render(svg, size, out)
        print(f"{out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
