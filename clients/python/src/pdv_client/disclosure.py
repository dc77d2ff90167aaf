"""Public-disclosure rewriting (pdv.v1 DisclosureService), as ``PdvClient.disclosure``.

    with PdvClient(target, api_key=key) as pdv:
        case = pdv.requests.open("disclosure", description="Open-records request 2026-114")
        out = pdv.disclosure.disclose(["pdv_…", ("123456789", "ssn")],
                                      purpose="public_disclosure", case_id=case.case_id)
        out[0].text   # "[REDACTED: …]", a mask, or a public value

An item is a token, or a ``(text, field)`` pair for a column holding that field (needed for
format-preserving tokens, which look like values). Each result says what the item became:
"public", "masked", "redacted" (unknown, shredded and forbidden tokens alike) or
"not_a_token" (the text has no token syntax; its ``text`` is empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING

from pdv.v1 import disclosure_pb2, disclosure_pb2_grpc

if TYPE_CHECKING:
    from pdv_client.client import PdvClient

__all__ = ["Disclosed", "Disclosure", "OUTCOMES"]

_OUTCOMES = {
    disclosure_pb2.DISCLOSURE_OUTCOME_PUBLIC: "public", disclosure_pb2.DISCLOSURE_OUTCOME_MASKED: "masked",
    disclosure_pb2.DISCLOSURE_OUTCOME_REDACTED: "redacted", disclosure_pb2.DISCLOSURE_OUTCOME_NOT_A_TOKEN: "not_a_token",
}
OUTCOMES = tuple(_OUTCOMES.values())


@dataclass(frozen=True)
class Disclosed:
    """What one item became, and the text to publish in its place (kept out of repr)."""

    outcome: str
    text: str = dataclass_field(repr=False)


class Disclosure:
    """The DisclosureService call of one PdvClient (same channel, key, timeout and error mapping)."""

    def __init__(self, client: PdvClient) -> None:
        self._client = client
        self._stub = disclosure_pb2_grpc.DisclosureServiceStub(client._channel)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        return "Disclosure(<client>)"

    def disclose(
        self, items: Sequence[str | tuple[str, str]], *, purpose: str, case_id: str, request_id: str | None = None,
        batch_size: int = 1000, timeout: float | None = None,
    ) -> list[Disclosed]:
        """Rewrite each item to what the public may see, in order, in batches of `batch_size`
        (batch i carries request id ``f"{request_id}/{i}"``).

        Raises:
            PermissionDenied: no `disclose` grant for the purpose.
            NotFound: `case_id` names no open disclosure request.
            InvalidArgument: bad purpose, case id, batch, or an unknown field.
        """
        from pdv_client.client import _batches, _check_count  # the client's own batching and checks

        messages = [_item(index, item) for index, item in enumerate(items)]
        results: list[Disclosed] = []
        for _, batch_id, batch in _batches(messages, request_id, batch_size):
            request = disclosure_pb2.DiscloseRequest(purpose=purpose, case_id=case_id, request_id=batch_id, items=batch)
            response = self._client._call(self._stub.Disclose, request, batch_id, timeout)
            _check_count(len(response.results), len(batch), batch_id)
            results.extend(Disclosed(_OUTCOMES.get(r.outcome, "unknown"), r.text) for r in response.results)
        return results


def _item(index: int, item: str | tuple[str, str]) -> disclosure_pb2.DiscloseItem:
    if isinstance(item, str):
        return disclosure_pb2.DiscloseItem(token=item)
    if isinstance(item, tuple) and len(item) == 2 and all(isinstance(part, str) for part in item):
        return disclosure_pb2.DiscloseItem(token=item[0], field=item[1])
    raise TypeError(f"item {index}: expected a str or a (text, field) pair of str")
