"""The user and operator commands of the ``wio`` command line, one module per area.

``wio.cli`` builds the root group and calls ``register_commands``; ``dev`` and ``serve`` (running
the server side) stay in ``wio.cli``.
"""
from __future__ import annotations

import click

from wio.commands import access, account, insight, storage, tools, workspaces

__all__ = ["register_commands", "SECTIONS"]

# How `wio --help` groups the commands, in this order.
SECTIONS = {
    "Account": ["register", "login", "whoami", "logout", "profile"],
    "Workspaces and sharing": ["workspace", "share", "group", "usage", "quota", "search", "crawl"],
    "Credentials for S3 tools": ["env", "key", "aws-profile", "mc", "rclone-remote"],
    "Operators": ["node", "root", "import", "user", "audit", "explain"],
    "Running wio": ["dev", "serve"],
    "Shell": ["completion"],
}


def register_commands(cli: click.Group) -> None:
    for module in (account, workspaces, access, storage, insight, tools):
        module.register_commands(cli)
