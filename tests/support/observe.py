"""Helpers for tests of what an operator watches: a health Watch stream, a metrics scrape."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.support.stack import Stack

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthWatch:
    """Follows grpc.health.v1 Watch for `service` on a thread; every status it was sent, in order."""

    def __init__(self, target: str, service: str = "") -> None:
        self._channel = grpc.insecure_channel(target)
        self._stream = health_pb2_grpc.HealthStub(self._channel).Watch(health_pb2.HealthCheckRequest(service=service))
        self.seen: list[int] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for update in self._stream:
                with self._changed:
                    self.seen.append(update.status)
                    self._changed.notify_all()
        except grpc.RpcError:
            pass  # cancelled by close()

    def wait_for(self, status: int, timeout: float = 60.0) -> None:
        """Until the stream's latest status is `status` (a generous deadline: the CI machine is busy)."""
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self.seen) and self.seen[-1] == status, timeout):
                raise AssertionError(f"health never became {status} within {timeout}s; saw {self.seen}")

    def close(self) -> None:
        self._stream.cancel()
        self._channel.close()


def check(stack: Stack, service: str = "") -> int:
    with grpc.insecure_channel(stack.target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def http_get(stack: Stack, path: str) -> tuple[int, str]:
    assert stack.server.metrics_port is not None, "the stack serves no metrics (metrics_address unset)"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.server.metrics_port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(stack: Stack) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """The scrape's text, and sample (name, sorted labels) → value."""
    status, text = http_get(stack, "/metrics")
    assert status == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }
    return text, samples


def value(samples: dict, name: str, **labels: str) -> float:
    """A sample's value; 0 when absent (a counter not yet incremented has no sample)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout}s")
        time.sleep(0.05)
