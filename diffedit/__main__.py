"""``diffedit``: the editor, or with a command (``rewrite``, ``draft``, ``inspect``, ``models``) the CLI."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

CLI_COMMANDS = ("rewrite", "draft", "blocks", "inspect", "models", "download", "serve")
# A name that does not exist yet still opens the editor on a new file when it says it is a text file.
NEW_FILE_SUFFIXES = (".md", ".markdown", ".txt")


def version() -> str:
    import importlib.metadata  # here: 20-60 ms that a `diffedit rewrite` never needs

    try:
        return importlib.metadata.version("diffedit")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def print_help() -> None:
    from diffedit.app import build_parser
    from diffedit.cli import build_parser as build_cli_parser

    build_parser(build_cli_parser()).print_help()


def not_a_command_or_file(name: str) -> str | None:
    """Why ``diffedit NAME`` should not open the editor on a new file NAME, or None when it should."""
    if name.startswith("-") or Path(name).exists() or Path(name).suffix.lower() in NEW_FILE_SUFFIXES:
        return None
    close = difflib.get_close_matches(name, CLI_COMMANDS, n=1)
    guess = f"did you mean `diffedit {close[0]}`? " if close else ""
    return (
        f"no command or file named {name!r}; {guess}(commands: {', '.join(CLI_COMMANDS)}; "
        f"to start a new file, give it a name ending in .md)"
    )


def run_app(argv: list[str]) -> int:
    from diffedit.app import main as app_main

    return int(app_main(argv))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in CLI_COMMANDS:
        from diffedit.cli import main as cli_main

        return cli_main(None if argv is None else args)  # None: as a program (sys.argv)
    if any(a in ("-h", "--help") for a in args):
        print_help()
        raise SystemExit(0)  # as argparse's own --help does
    if any(a in ("-V", "--version") for a in args):
        print(f"diffedit {version()}")
        return 0
    if args and (problem := not_a_command_or_file(args[0])):
        print(f"diffedit: {problem}", file=sys.stderr)
        return 2
    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
