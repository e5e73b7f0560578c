"""The desktop app: ``diffedit [FILE.md]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from diffedit.settings import Settings
from diffedit.ui.main_window import MainWindow
from diffedit.ui.theme import THEMES, apply_theme


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="diffedit", description="Markdown editor with in-place diffusion rewrites"
    )
    parser.add_argument("file", nargs="?", type=Path, help="Markdown file to open")
    parser.add_argument("--model", help="model folder (default: the bundled demo model)")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--no-model", action="store_true", help="do not load the model at start")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName("diffedit")
    app.setOrganizationName("diffedit")
    settings = Settings.load()
    if args.model:
        settings.model_path = args.model
    if args.device:
        settings.device = args.device
    apply_theme(app, THEMES[settings.theme])
    window = MainWindow(settings, autoload_model=not args.no_model)
    if args.file is not None:
        window.open_path(args.file)
    window.show()
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
