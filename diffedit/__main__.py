"""``diffedit``: the editor, or with ``rewrite``/``blocks``/``models`` the command-line engine."""

from __future__ import annotations

import sys

CLI_COMMANDS = {"rewrite", "blocks", "models", "download"}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and (args[0] in CLI_COMMANDS or args[0] in ("-h", "--help")):
        from diffedit.cli import main as cli_main

        return cli_main(args)
    from diffedit.app import main as app_main

    return int(app_main(args))


if __name__ == "__main__":
    sys.exit(main())
