"""Reading hand-written YAML configuration with line numbers in every error.

The catalog and the policy file are read as YAML node trees (not plain dicts) so that
each complaint names the file and the line it is about.
"""

from __future__ import annotations

import re

import yaml

from vault.errors import ConfigError

NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_KIND_NAMES = {int: "an integer", str: "text", bool: "true or false", object: "a single value"}


class NodeReader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node | None, message: str) -> ConfigError:
        where = f", line {node.start_mark.line + 1}" if node is not None else ""
        return ConfigError(f"{self.source}{where}: {message}")

    def compose(self, text: str, what: str) -> yaml.Node:
        """The document's root node; refuses invalid YAML and an empty document."""
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{self.source}{where}: not valid YAML") from None
        if root is None:
            raise self.fail(None, f"{what} is empty")
        return root

    def mapping(self, node, what, allowed=None, required=frozenset()):
        """Return {key: (key node, value node)}, refusing duplicate and unknown keys."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        out = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node, str)
            if key in out:
                raise self.fail(key_node, f"duplicate key {key!r} in {what}")
            if allowed is not None and key not in allowed:
                raise self.fail(key_node, f"unknown key {key!r} in {what} "
                                          f"(allowed: {', '.join(sorted(allowed))})")
            out[key] = (key_node, value_node)
        missing = sorted(set(required) - set(out))
        if missing:
            raise self.fail(node, f"{what} is missing required key {missing[0]!r}")
        return out

    def scalar(self, node, kind):
        if isinstance(node, yaml.ScalarNode):
            value = yaml.constructor.SafeConstructor().construct_object(node)
            if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
                return value
        raise self.fail(node, f"expected {_KIND_NAMES[kind]}")

    def identifier(self, node, what):
        name = self.scalar(node, str)
        if not NAME.fullmatch(name):
            raise self.fail(node, f"{what} {name!r} must be lower_snake_case")
        return name

    def choice(self, node, table, what):
        value = self.scalar(node, str)
        if value not in table:
            raise self.fail(node, f"unknown {what} {value!r} (known: {', '.join(sorted(table))})")
        return value
