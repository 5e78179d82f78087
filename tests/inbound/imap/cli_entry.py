"""`threadline` with the IMAP plugin registered, whether or not its entry point is wired yet.

    python -m tests.inbound.imap.cli_entry inbox list
"""

from __future__ import annotations

from core.cli.main import build_cli
from core.registry import Registry, load_plugins
from inbound.imap.plugin import register


def main() -> None:
    registry = load_plugins(Registry())
    if "imap" not in registry.components:
        register(registry)
    build_cli(registry)()


if __name__ == "__main__":
    main()
