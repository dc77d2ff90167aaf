"""Request decoding inside the guarded behaviour, not in grpc's own deserializer.

grpc decodes a request before any interceptor code runs, so an undecodable one became
INTERNAL "Exception deserializing request!" with a traceback in the server log, before
the caller was authenticated, and every request was read whole before it could be
refused. Guarded methods are therefore served as stream-request handlers with a
pass-through deserializer (on the wire a unary request is a stream of one message):
grpc hands over raw bytes only when the behaviour asks for them, so the caller is
authenticated first, its message is read only then, and a decode failure or an unknown
enum value is an ordinary BadRequest the interceptor answers with INVALID_ARGUMENT.

Reading the message on the worker thread also bounds the bytes held: at most one message
per worker thread (`max_workers`) is read at a time; calls waiting for a thread hold only
their HTTP/2 flow-control window.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

log = logging.getLogger("pdv.api")

# After a call whose message was at least this large, glibc is asked to give freed heap
# back to the system: it otherwise keeps the arenas a burst of large calls grew, and the
# process stayed ~1.6 GB after one burst.
TRIM_AFTER_BYTES = 1 << 20


class BadRequest(Exception):
    """The request bytes are not a valid message of the method's type; the message says why."""

    def __init__(self, reason: str, size: int = 0) -> None:
        super().__init__(reason)
        self.size = size  # bytes read, so the caller can release them


class RequestReader:
    """Turns a method's raw request bytes into its message, or raises BadRequest."""

    def __init__(self, deserializer: Callable[[bytes], Any] | None, request_streaming: bool) -> None:
        self._deserializer = deserializer
        self.request_streaming = request_streaming

    def one(self, raw_requests: Iterator[bytes]) -> tuple[Any, int]:
        """The single request of a unary-request call and its size in bytes."""
        raw = next(raw_requests, None)
        if raw is None:
            raise BadRequest("the call carried no request message")
        size = len(raw)
        try:
            return self.decode(raw), size
        except BadRequest as exc:
            reason = str(exc)
        del raw  # before raising: the traceback keeps this frame, and so the bytes, alive
        raise BadRequest(reason, size)

    def decode(self, raw: bytes) -> Any:
        if self._deserializer is None:
            return raw
        try:
            message = self._deserializer(raw)
        except (DecodeError, ValueError, TypeError):
            raise BadRequest("the request could not be decoded") from None
        if isinstance(message, Message):
            problem = unknown_enum(message)
            if problem is not None:
                raise BadRequest(problem)
        return message


def stream_handler(handler: grpc.RpcMethodHandler, guard: Callable[..., Callable]) -> grpc.RpcMethodHandler:
    """The same method as a stream-request handler whose behaviour, `guard(behaviour, reader)`,
    reads (and decodes) the raw request itself; the response side is unchanged."""
    for kind, factory in (
        ("unary_unary", grpc.stream_unary_rpc_method_handler),
        ("unary_stream", grpc.stream_stream_rpc_method_handler),
        ("stream_unary", grpc.stream_unary_rpc_method_handler),
        ("stream_stream", grpc.stream_stream_rpc_method_handler),
    ):
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            reader = RequestReader(handler.request_deserializer, handler.request_streaming)
            return factory(guard(behaviour, reader), None, handler.response_serializer)
    return handler


def unknown_enum(message: Message, path: str = "") -> str | None:
    """A 'field: unknown value N of Enum' for the first enum field (at any depth) holding a
    number its enum does not declare, else None. proto3 keeps such numbers as they came,
    so `mode = 99` would otherwise read as whatever `mode != X` happens to mean."""
    if not _has_enums(message.DESCRIPTOR):
        return None
    for field, value in message.ListFields():
        name = f"{path}{field.name}"
        if field.type == FieldDescriptor.TYPE_ENUM:
            values = value if _is_repeated(field) else (value,)
            for number in values:
                if number not in field.enum_type.values_by_number:
                    return f"{name}: unknown value {number} of {field.enum_type.full_name}"
        elif field.type == FieldDescriptor.TYPE_MESSAGE and _has_enums(field.message_type):
            if field.message_type.GetOptions().map_entry:
                children = list(value.values())
            else:
                children = list(value) if _is_repeated(field) else [value]
            for i, child in enumerate(children):
                if isinstance(child, Message):
                    found = unknown_enum(child, f"{name}[{i}]." if _is_repeated(field) else f"{name}.")
                    if found is not None:
                        return found
    return None


_ENUMS: dict[str, bool] = {}  # message type -> does it hold an enum at any depth


def _has_enums(descriptor: Descriptor, seen: frozenset[str] = frozenset()) -> bool:
    known = _ENUMS.get(descriptor.full_name)
    if known is not None:
        return known
    found = False
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_ENUM:
            found = True
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name not in seen:
            found = _has_enums(field.message_type, seen | {descriptor.full_name})
        if found:
            break
    _ENUMS[descriptor.full_name] = found
    return found


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


class _Trimmer:
    """Asks glibc to hand freed heap back to the system shortly after large calls end.

    Not in the call itself: grpc frees a call's buffers (and those of a call refused before
    its message was read) only after the behaviour returns. One daemon thread trims at most
    every TRIM_DELAY seconds however many calls ask, so a flood of refusals cannot turn
    into a flood of trims.
    """

    def __init__(self) -> None:
        name = ctypes.util.find_library("c")
        self._trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None  # glibc only
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        if self._trim is None:
            return
        self._wanted.set()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pdv-malloc-trim", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            time.sleep(TRIM_DELAY)  # let the calls that asked finish freeing
            self._wanted.clear()
            # pdv serve collects the youngest generation only every GEN0_THRESHOLD allocations
            # (vault/services/runtime/collector.py), and an idle server allocates nothing: a
            # refused large call's exception, its traceback and the frames holding its request
            # are a reference cycle that would outlive the burst. Collected here, then trimmed.
            gc.collect()
            self._trim(0)  # type: ignore[misc]


TRIM_DELAY = 0.1
_trimmer: _Trimmer | None = None
_trimmer_lock = threading.Lock()


def trim_soon() -> None:
    """Have freed heap handed back to the system within about TRIM_DELAY seconds."""
    global _trimmer
    with _trimmer_lock:
        if _trimmer is None:
            _trimmer = _Trimmer()
    _trimmer.request()


def release_memory(message_bytes: int) -> None:
    """After a call whose message was large: trim_soon (small calls leave nothing worth it)."""
    if message_bytes >= TRIM_AFTER_BYTES:
        trim_soon()
