"""Unit tests of pdv_client.PdvClient against an in-process fake TokenService.

The fake is for the client's own tests only: it checks what the wrapper sends
and how it reads answers, not how the real service behaves.
"""

from __future__ import annotations

import pickle
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from pdv.v1 import token_pb2, token_pb2_grpc
from pdv_client import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PdvClient,
    PdvError,
    PermissionDenied,
    Record,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    error_for_status,
)

API_KEY = "sk-test-0123456789"
CANARY = "canary-value@example.org"
ERROR_CLASSES = [
    InvalidArgument,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    Unauthenticated,
    ResourceExhausted,
    FailedPrecondition,
    Unavailable,
    DeadlineExceeded,
    Internal,
]


class FakeTokenService(token_pb2_grpc.TokenServiceServicer):
    """Answers from memory and remembers each request and its metadata."""

    def __init__(self) -> None:
        self.requests: list[object] = []
        self.metadata: list[dict[str, str | bytes]] = []
        self.abort_with: tuple[grpc.StatusCode, str] | None = None
        self.delay = 0.0
        self.vault = {"tok-email": ("email", CANARY)}
        self._lock = threading.Lock()

    def _receive(self, request: object, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.requests.append(request)
            self.metadata.append(dict(context.invocation_metadata()))
        if self.delay:
            time.sleep(self.delay)
        if self.abort_with is not None:
            context.abort(*self.abort_with)

    def Tokenize(self, request, context):  # noqa: N802 (generated name)
        self._receive(request, context)
        response = token_pb2.TokenizeResponse()
        for index, record in enumerate(request.records):
            if "bad" in record.fields and request.mode == token_pb2.BATCH_MODE_PARTIAL:
                response.results.add()
                response.errors.add(
                    index=index, field="bad", code=3, message="field bad is not in the catalog"
                )
                continue
            subject = record.subject_id or f"subject:{request.request_id}:{index}"
            response.results.add(
                subject_id=subject, tokens={name: f"tok:{subject}:{name}" for name in record.fields}
            )
        return response

    def Detokenize(self, request, context):  # noqa: N802
        self._receive(request, context)
        response = token_pb2.DetokenizeResponse()
        for item in request.items:
            if item.token in self.vault:
                field, value = self.vault[item.token]
                response.results.add(token=item.token, field=field, value=value, code=0)
            else:
                response.results.add(token=item.token, code=5, message="token not found")
        return response

    def Lookup(self, request, context):  # noqa: N802
        self._receive(request, context)
        response = token_pb2.LookupResponse()
        for query in request.queries:
            result = response.results.add()
            if query.value == CANARY:
                result.matches.add(subject_id="s1", token="tok-email")
        return response


@pytest.fixture
def service() -> FakeTokenService:
    return FakeTokenService()


@pytest.fixture
def target(service: FakeTokenService) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    token_pb2_grpc.add_TokenServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.fixture
def client(target: str) -> Iterator[PdvClient]:
    with PdvClient(target, api_key=API_KEY, timeout=10) as pdv:
        yield pdv


# -- tokenize -----------------------------------------------------------------


def test_tokenize_splits_2500_records_into_3_requests_with_derived_ids(
    client: PdvClient, service: FakeTokenService
) -> None:
    records = [{"fields": {"email": f"p{i}@example.org"}} for i in range(2500)]

    results = client.tokenize(records, purpose="case", source="311", request_id="job-7")

    assert [r.request_id for r in service.requests] == ["job-7/0", "job-7/1", "job-7/2"]
    assert [len(r.records) for r in service.requests] == [1000, 1000, 500]
    assert all(r.purpose == "case" and r.source == "311" for r in service.requests)
    assert len(results) == 2500
    # Results come back in input order across batches.
    assert results[0].subject_id == "subject:job-7/0:0"
    assert results[1500].subject_id == "subject:job-7/1:500"
    assert results[2499].tokens == {"email": "tok:subject:job-7/2:499:email"}


def test_tokenize_without_request_id_uses_one_random_base_per_call(
    client: PdvClient, service: FakeTokenService
) -> None:
    records = [Record({"email": "a@example.org"})] * 5

    client.tokenize(records, purpose="case", source="311", batch_size=2)
    client.tokenize(records[:1], purpose="case", source="311")

    ids = [r.request_id for r in service.requests]
    bases = {i.rsplit("/", 1)[0] for i in ids[:3]}
    assert [i.rsplit("/", 1)[1] for i in ids] == ["0", "1", "2", "0"]
    assert len(bases) == 1
    assert ids[3].rsplit("/", 1)[0] not in bases


def test_tokenize_accepts_record_and_mapping_shapes(
    client: PdvClient, service: FakeTokenService
) -> None:
    results = client.tokenize(
        [
            Record({"name": "Ada"}, subject_id="s-1"),
            {"fields": {"name": "Bob"}, "subject_id": "s-2"},
            {"fields": {"name": "Cy"}},
            token_pb2.Record(fields={"name": "Di"}),
        ],
        purpose="case",
        source="311",
        notice_id="notice-3",
        mode="partial",
    )

    (request,) = service.requests
    assert request.mode == token_pb2.BATCH_MODE_PARTIAL
    assert request.notice_id == "notice-3"
    assert [r.subject_id for r in request.records] == ["s-1", "s-2", "", ""]
    assert [r.subject_id for r in results[:2]] == ["s-1", "s-2"]
    assert all(r.ok for r in results)


def test_tokenize_rejects_plain_field_mapping_without_echoing_values(
    client: PdvClient, service: FakeTokenService
) -> None:
    with pytest.raises(ValueError, match="record 1") as excinfo:
        client.tokenize(
            [{"fields": {"email": "ok@example.org"}}, {"email": CANARY}],
            purpose="case",
            source="311",
        )
    assert CANARY not in str(excinfo.value)
    with pytest.raises(TypeError) as excinfo_type:
        client.tokenize([{"fields": {"age": 42}}], purpose="case", source="311")
    assert "42" not in str(excinfo_type.value)
    assert service.requests == []  # nothing is sent when any record is malformed


def test_partial_mode_item_errors_carry_input_index(client: PdvClient) -> None:
    records = [{"fields": {"name": "n"}}] * 3 + [{"fields": {"bad": CANARY}}]

    results = client.tokenize(records, purpose="case", source="311", mode="partial", batch_size=2)

    assert [r.ok for r in results] == [True, True, True, False]
    (error,) = results[3].errors
    assert (error.index, error.field, error.code) == (3, "bad", 3)
    assert isinstance(error.to_exception(), InvalidArgument)
    assert results[3].tokens == {} and results[3].subject_id == ""


def test_tokenize_rejects_bad_mode_and_batch_size(client: PdvClient) -> None:
    with pytest.raises(ValueError):
        client.tokenize([], purpose="p", source="s", mode="best-effort")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        client.tokenize([{"fields": {}}], purpose="p", source="s", batch_size=0)


# -- detokenize and lookup ----------------------------------------------------


def test_detokenize_returns_results_in_order_and_sends_fields(
    client: PdvClient, service: FakeTokenService
) -> None:
    results = client.detokenize(
        ["tok-email", ("tok-missing", "phone")], purpose="case", request_id="r1"
    )

    (request,) = service.requests
    assert request.request_id == "r1/0"
    assert [(i.token, i.field) for i in request.items] == [("tok-email", ""), ("tok-missing", "phone")]
    assert [(r.token, r.field, r.value, r.code) for r in results] == [
        ("tok-email", "email", CANARY, 0),
        ("tok-missing", "", "", 5),
    ]
    assert results[0].ok and results[0].to_exception() is None
    assert CANARY not in repr(results[0])


def test_detokenize_batches(client: PdvClient, service: FakeTokenService) -> None:
    results = client.detokenize(["tok-email"] * 5, purpose="case", request_id="d", batch_size=2)
    assert [r.request_id for r in service.requests] == ["d/0", "d/1", "d/2"]
    assert len(results) == 5


def test_detokenize_one_returns_value(client: PdvClient) -> None:
    assert client.detokenize_one("tok-email", purpose="case") == CANARY


def test_detokenize_one_maps_item_not_found_to_not_found(client: PdvClient) -> None:
    with pytest.raises(NotFound) as excinfo:
        client.detokenize_one("tok-missing", purpose="case", field="email")
    assert excinfo.value.message == "token not found"
    assert excinfo.value.status is grpc.StatusCode.NOT_FOUND


def test_lookup_and_lookup_many(client: PdvClient, service: FakeTokenService) -> None:
    matches = client.lookup("email", CANARY, purpose="case")
    assert [(m.subject_id, m.token) for m in matches] == [("s1", "tok-email")]

    many = client.lookup_many(
        [("email", "nobody@example.org"), ("email", CANARY)], purpose="case", request_id="q"
    )
    assert [len(m) for m in many] == [0, 1]
    assert service.requests[-1].request_id == "q/0"


# -- errors -----------------------------------------------------------------


@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_call_status_maps_to_exception_class(
    client: PdvClient, service: FakeTokenService, error_class: type[PdvError]
) -> None:
    service.abort_with = (error_class.status_code, "server says no")

    with pytest.raises(error_class) as excinfo:
        client.tokenize([{"fields": {"email": CANARY}}], purpose="case", source="311", request_id="x")

    error = excinfo.value
    assert isinstance(error, PdvError)
    assert error.status is error_class.status_code
    assert error.message == "server says no"
    assert error.request_id == "x/0"
    assert isinstance(error.__cause__, grpc.RpcError)
    assert CANARY not in str(error)


@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_item_code_number_maps_to_exception_class(error_class: type[PdvError]) -> None:
    number = error_class.status_code.value[0]
    error = error_for_status(number, "why")
    assert type(error) is error_class
    assert str(error) == f"{error_class.status_code.name}: why"


def test_codes_without_a_class_map_to_base_error_and_ok_is_not_an_error() -> None:
    error = error_for_status(grpc.StatusCode.UNIMPLEMENTED.value[0], "no such method")
    assert type(error) is PdvError
    assert error.status is grpc.StatusCode.UNIMPLEMENTED
    assert type(error_for_status(999)) is PdvError
    with pytest.raises(ValueError):
        error_for_status(0)


def test_client_timeout_raises_deadline_exceeded(
    client: PdvClient, service: FakeTokenService
) -> None:
    service.delay = 1.0
    with pytest.raises(DeadlineExceeded):
        client.lookup("email", "x", purpose="case", timeout=0.1)


def test_unreachable_server_raises_unavailable() -> None:
    with socket.socket() as sock:  # reserve a free port, then free it: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with PdvClient(f"127.0.0.1:{port}", timeout=5) as pdv, pytest.raises(Unavailable):
        pdv.lookup("email", "x", purpose="case")


# -- credentials, repr, lifecycle -------------------------------------------


def test_api_key_is_sent_as_metadata(client: PdvClient, service: FakeTokenService) -> None:
    client.lookup("email", "x", purpose="case")
    assert service.metadata[0]["x-api-key"] == API_KEY


def test_no_api_key_sends_no_header(target: str, service: FakeTokenService) -> None:
    with PdvClient(target) as pdv:
        pdv.lookup("email", "x", purpose="case")
    assert "x-api-key" not in service.metadata[0]


def test_repr_and_pickle_do_not_reveal_api_key(client: PdvClient) -> None:
    assert API_KEY not in repr(client)
    assert "redacted" in repr(client)
    with pytest.raises(TypeError):
        pickle.dumps(client)


def test_from_channel_leaves_callers_channel_open(target: str, service: FakeTokenService) -> None:
    channel = grpc.insecure_channel(target)
    try:
        with PdvClient.from_channel(channel, api_key=API_KEY) as pdv:
            pdv.lookup("email", "x", purpose="case")
            assert API_KEY not in repr(pdv)
        # The client is closed, the channel still works.
        token_pb2_grpc.TokenServiceStub(channel).Lookup(token_pb2.LookupRequest(), timeout=5)
        with pytest.raises(ValueError, match="closed"):
            pdv.lookup("email", "x", purpose="case")
    finally:
        channel.close()
    assert service.metadata[0]["x-api-key"] == API_KEY


def test_context_manager_closes_owned_channel(target: str) -> None:
    with PdvClient(target) as pdv:
        pass
    with pytest.raises(ValueError, match="closed"):
        pdv.lookup("email", "x", purpose="case")
    pdv.close()  # idempotent


def test_disclosure_rejects_malformed_items_locally_and_keeps_texts_out_of_repr(client: PdvClient) -> None:
    from pdv_client import Disclosed

    with pytest.raises(TypeError, match=r"item 1: expected a str or a \(text, field\) pair of str"):
        client.disclosure.disclose(["pdv_x", ("482913305",)], purpose="public_disclosure", case_id="req_x")  # type: ignore[list-item]
    assert "482913305" not in repr(Disclosed("public", "482913305"))
    assert repr(client.disclosure) == "Disclosure(<client>)"
