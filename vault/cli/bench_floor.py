"""`pdv bench`'s floor: what its client gets from a gRPC server that does no work at all.

The do-nothing server (vault.api.floor) runs in a process of its own, built as
`pdv serve` builds PDV's; the bench sends it the same serialized single-item calls, over
the same kind of channel, as it sends PDV. The floor is what this machine's transport and
client allow a single call, so the bench shows how much of a call's cost is PDV's work
and how much is gRPC's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pdv_client.raw import wait_until_serving

from vault.keys.openbao import free_loopback_port


class FloorServer:
    """The do-nothing server, in its own process, for the length of a `with` block."""

    def __init__(self, pki_files: tuple[Path, Path, Path] | None, credentials: object | None) -> None:
        self.pki_files, self.credentials = pki_files, credentials  # (server cert, server key, client CA)
        self.target = f"127.0.0.1:{free_loopback_port()}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "FloorServer":
        tls = [str(p) for p in self.pki_files] if self.pki_files else []
        self._proc = subprocess.Popen([sys.executable, "-m", "vault.api.floor", self.target, *tls])
        wait_until_serving(self.target, 30, alive=lambda: self._proc is not None and self._proc.poll() is None,
                           credentials=self.credentials)  # type: ignore[arg-type]
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None, "the floor server is not running"
        return self._proc.pid

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=30)
