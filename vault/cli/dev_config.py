"""The config file `pdv dev` writes (.pdv/pdv.toml), and the default the admin commands take from it.

`pdv dev` serves with the settings it writes here, so the file is what the running stack
uses, and `pdv db upgrade`, `pdv audit` and the --local forms of `pdv keys` and `pdv
dispose` run against the dev stack without --config, PDV_* variables or the root token.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

DEV_CONFIG = Path(".pdv") / "pdv.toml"  # relative to the working directory, as `pdv dev`'s default --data-dir
# `pdv serve` never picks up the dev file by itself: a server must not start on the dev
# sandbox's settings (dev policy, the dev API key) because it was run from the wrong directory.
_NO_DEFAULT = frozenset({"serve"})

HEADER = """\
# Written by `pdv dev` at every start; edits are overwritten. DEVELOPMENT ONLY.
# vault_admin_token_file holds a pdv-admin token (KEK rotate / rewrap / status / trim) of the
# dev OpenBao, next to its unseal key and root token: never point a real deployment at this.
# Run from the directory holding .pdv/, `pdv db upgrade`, `pdv audit query|export` and the
# --local forms of `pdv audit verify`, `pdv keys` and `pdv dispose` read this file when no
# --config is given; PDV_* variables override it. Without --local those call the server.
"""


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only (0600), replacing what was there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode above applies only to a new file
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def write_secret(path: Path, secret: str) -> None:
    """A key or token file: the secret alone, no trailing newline (a client that sends the
    file's bytes as they are would send the newline too, and be refused)."""
    write_private(path, secret.strip())


def write_dev_config(path: Path, settings: dict[str, Any]) -> None:
    """Write `settings` (setting name → str, Path, bool, list of str, or list of dicts of str) as TOML."""
    lines = [HEADER]
    for name, value in settings.items():
        if value is not None:
            lines.append(f"{name} = {_toml(value)}\n")
    write_private(path, "".join(lines))


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))  # a JSON string (ASCII, escaped) is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for a {type(value).__name__}")


def apply_default_config(args: argparse.Namespace) -> None:
    """Give a command that takes --config the dev stack's file when none was given and it exists."""
    if getattr(args, "config", False) is None and args.command not in _NO_DEFAULT and DEV_CONFIG.is_file():
        args.config = DEV_CONFIG
