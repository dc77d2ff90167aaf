"""grpc.health.v1 driven by the health prober: NOT_SERVING, overall ("") and for every PDV
service, while Vault or the database fails its probe or a rollback is detected; SERVING
again by itself once they recover. grpc's HealthServicer implements Check and Watch; a
Watch stream hears every change. After a graceful stop begins, grpc's servicer ignores
further changes and keeps answering NOT_SERVING."""

from __future__ import annotations

from grpc_health.v1 import health, health_pb2

from vault.observability.health import HealthProber, HealthState


def publish_health(prober: HealthProber, servicer: health.HealthServicer, names: tuple[str, ...]) -> None:
    """Keep `servicer`'s status for "" and `names` in step with `prober` from now on."""
    def apply(state: HealthState) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if state.serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in (*names, ""):  # the overall status last: whoever sees it change finds every service changed too
            servicer.set(name, status)

    prober.subscribe(apply)
