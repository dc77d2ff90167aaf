"""The domain's error tree. Stdlib only; the gRPC edge maps each class to a status.

Messages are written for the caller and never carry a personal value, a key or a
token secret: every constructor takes only names, indexes and reasons.
"""

import re

# The catalog's own syntax for field names (vault.yaml_nodes.NAME): at most 63 characters,
# so such a name also fits the access log's field column.
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


def shown_field(name: str) -> str:
    """How a field name the caller sent may appear in a message or the access log.

    Whole if it has the catalog's syntax (lower_snake_case, at most 63 characters); otherwise
    only its length, since a name of any other shape (an email, a person's name, a long
    string) may be a value sent in the wrong place, and it could not fit the column anyway.
    """
    return name if _FIELD_NAME.fullmatch(name) else f"<{len(name)} characters, not a field name>"


class PdvError(Exception):
    """Base of every error PDV raises on purpose."""


class InvalidInput(PdvError):
    """The request is malformed; the message names the item, never its value.

    `item` names the part of the request at fault when the whole request is refused
    ("purpose", "items[3]"): the access-log refusal records it.
    """

    def __init__(self, message: str, item: str = "") -> None:
        super().__init__(message)
        self.item = item


class UnknownField(InvalidInput):
    """The field is not in the catalog."""

    def __init__(self, field: str) -> None:
        shown = shown_field(field)
        super().__init__(f"unknown field {shown!r}: not in the field catalog", shown)
        self.field = shown  # never the name itself unless it looks like a field name


class InvalidValue(InvalidInput):
    """A value failed its field's normalizer or validator."""


class NotFound(PdvError):
    """The thing asked for does not exist (or may not be known to exist)."""


class Conflict(PdvError):
    """A concurrent change got there first; the same request may succeed if retried."""


class RequestIdReused(PdvError):
    """A request id already names a different request of this principal."""

    def __init__(self) -> None:
        super().__init__("request_id was already used for a different request")


class Unauthenticated(PdvError):
    """No credential, or one that names no principal."""


class PermissionDenied(PdvError):
    """The principal may not do this."""


class Unavailable(PdvError):
    """A dependency (Vault, the database) cannot be reached; retry later."""


class KeyUnavailable(Unavailable):
    """Vault/OpenBao is sealed, unreachable or refused a key operation."""


class StoreUnavailable(Unavailable):
    """The database cannot be reached or is not migrated."""


class DecryptionFailed(PdvError):
    """A ciphertext did not authenticate. Deliberately says nothing more."""

    def __init__(self) -> None:
        super().__init__("decryption failed")


class ConfigError(PdvError):
    """A configuration, catalog or policy file is invalid; the message names the place."""


class RotationRefused(PdvError):
    """A KEK operation (trim) was refused because its preconditions do not hold; the message says which."""


class RateLimited(PdvError):
    """The principal exceeded its detokenize / lookup rate; retry later."""


class AnswerTooLarge(PdvError):
    """The answer would not fit in one message (max_message_bytes); ask for fewer items."""


class Overloaded(PdvError):
    """The server is busy with other calls' items (max_items_in_flight); retry shortly."""


class InvalidTransition(PdvError):
    """The request is not in a state that allows the change (a privacy request's workflow); the message says why."""


class OutOfRange(PdvError):
    """A cursor older than what is still retained (events to holders); the message says where to resume."""
