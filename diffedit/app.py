"""The desktop app: ``diffedit [FILE.md]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from diffedit.resources import APP_ID, icon_path

if TYPE_CHECKING:  # Qt is imported only to open a window, not for --help
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from diffedit.ui.main_window import MainWindow


def build_parser(cli: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The editor's arguments; given the CLI's parser, the help also lists the CLI's commands."""
    epilog = None
    if cli is not None:
        sub = next(a for a in cli._actions if isinstance(a, argparse._SubParsersAction))
        rows = [f"  {a.dest:<10} {a.help}" for a in sub._choices_actions]
        epilog = "commands (diffedit COMMAND --help for their options):\n" + "\n".join(rows)
    parser = argparse.ArgumentParser(
        prog="diffedit",
        usage="diffedit [FILE] [--model MODEL] [--no-model] [--device DEVICE]\n"
        "       diffedit COMMAND ...\n       diffedit --version",
        description="Markdown editor with in-place diffusion rewrites",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", nargs="?", type=Path, metavar="FILE", help="Markdown file to open")
    parser.add_argument("--model", help="model folder (default: the bundled demo model)")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--no-model", action="store_true", help="do not load the model at start")
    parser.add_argument("-V", "--version", action="store_true", help="print the version and exit")
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def application_icon() -> QIcon:
    """The app's icon: the SVG for any size, with the rendered PNGs for the small sizes it blurs at."""
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QIcon

    from diffedit.desktop import ICON_SIZES

    icon = QIcon()
    for size in ICON_SIZES:
        icon.addFile(str(icon_path(size)), QSize(size, size))
    icon.addFile(str(icon_path()))  # other sizes scale from the SVG
    return icon


def open_window(argv: list[str]) -> tuple[QApplication, MainWindow]:
    """The application and its first window, shown; recovery is offered once the event loop runs."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from diffedit.settings import Settings
    from diffedit.ui.editing.theme import apply_theme, resolve_theme
    from diffedit.ui.main_window import MainWindow

    args = parse_args(argv)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName("diffedit")
    app.setOrganizationName("diffedit")
    app.setDesktopFileName(APP_ID)  # Wayland and task bars match the window to the installed desktop entry
    app.setWindowIcon(application_icon())
    settings = Settings.load()
    if args.model:
        settings.model_path = args.model
    if args.device:
        settings.device = args.device
    apply_theme(app, resolve_theme(settings.theme))
    window = MainWindow(settings, autoload_model=not args.no_model)
    if args.file is not None:
        window.documents.open_path(args.file)
    window.show()
    # The first window of the process offers what a crashed or killed editor left behind.
    QTimer.singleShot(0, window.documents.offer_recovery)
    return app, window


def main(argv: list[str] | None = None) -> int:
    app, _window = open_window(sys.argv[1:] if argv is None else argv)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
