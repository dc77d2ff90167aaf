"""Server reflection v1, as grpcurl and buf curl ask for it (v1alpha is in test_bad_input.py).

The client side is built here from the v1 wire contract (grpc-proto's
grpc/reflection/v1/reflection.proto: the fields these tests use, by number), compiled
with protoc into a pool of its own, so it shares nothing with how the server serves v1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

from tests.support.stack import Stack

V1_CLIENT_PROTO = """
syntax = "proto3";
package grpc.reflection.v1;
service ServerReflection {
  rpc ServerReflectionInfo(stream ServerReflectionRequest) returns (stream ServerReflectionResponse);
}
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_containing_symbol = 4;
    string list_services = 7;
  }
}
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ListServiceResponse { repeated ServiceResponse service = 1; }
message ServiceResponse { string name = 1; }
message ErrorResponse { int32 error_code = 1; string error_message = 2; }
"""


@pytest.fixture(scope="module")
def v1(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The v1 client's request and response classes and its method path."""
    root = tmp_path_factory.mktemp("reflection_v1")
    (root / "reflection_v1_client.proto").write_text(V1_CLIENT_PROTO)
    out = root / "set.pb"
    assert protoc.main(["protoc", f"-I{root}", f"--descriptor_set_out={out}", "reflection_v1_client.proto"]) == 0
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    method = pool.FindServiceByName("grpc.reflection.v1.ServerReflection").methods_by_name["ServerReflectionInfo"]
    return {
        "request": message_factory.GetMessageClass(method.input_type),
        "response": message_factory.GetMessageClass(method.output_type),
        "path": f"/{method.containing_service.full_name}/{method.name}",
    }


def ask(stack: Stack, v1: dict[str, Any], **request: str) -> Any:
    """One v1 reflection request, with no API key (reflection is open); the one response."""
    with grpc.insecure_channel(stack.target) as channel:
        call = channel.stream_stream(
            v1["path"], request_serializer=v1["request"].SerializeToString, response_deserializer=v1["response"].FromString
        )
        (response,) = list(call(iter([v1["request"](**request)]), timeout=5))
    return response


def test_reflection_v1_lists_the_services(stack: Stack, v1: dict[str, Any]) -> None:
    response = ask(stack, v1, list_services="")
    assert response.WhichOneof("message_response") == "list_services_response"
    names = {s.name for s in response.list_services_response.service}
    assert {"pdv.v1.TokenService", "pdv.v1.SubjectService", "grpc.health.v1.Health"} <= names
    assert {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= names


@pytest.mark.parametrize(
    ("symbol", "file_name", "package"),
    [
        ("pdv.v1.TokenService", "pdv/v1/token.proto", "pdv.v1"),
        ("grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto", "grpc.reflection.v1"),
    ],
)
def test_reflection_v1_describes_a_service(stack: Stack, v1: dict[str, Any], symbol: str, file_name: str,
                                           package: str) -> None:
    response = ask(stack, v1, file_containing_symbol=symbol)
    assert response.WhichOneof("message_response") == "file_descriptor_response", response.error_response
    files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in response.file_descriptor_response.file_descriptor_proto]
    (described,) = [f for f in files if f.name == file_name]
    assert described.package == package
    assert symbol.rsplit(".", 1)[1] in {s.name for s in described.service}


def test_reflection_v1_names_an_unknown_symbol(stack: Stack, v1: dict[str, Any]) -> None:
    response = ask(stack, v1, file_containing_symbol="pdv.v1.NoSuchService")
    assert response.WhichOneof("message_response") == "error_response"
    assert response.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
