"""Observability: what an operator watches PDV through.

- health: the background prober (Vault, the database, the restore guard) behind
  grpc.health.v1 and the HTTP readiness endpoint.
- metrics: the process's Prometheus instruments, on a registry of its own.
- collectors: gauges and counters read at scrape time from the parts that keep them (the DEK
  cache, the spare-key pool, the item budget, the audit chain, the disposal and rewrap jobs).
- http: the metrics HTTP server (`/metrics`, `/ready`), on its own port (metrics_address).
- logs: the text and JSON-lines log formats.

May import vault.errors, prometheus_client and python-json-logger only: the parts it watches
are handed in by the composition root (vault.bootstrap) and read through their own plain
attributes, so nothing on a call's path imports this package except to record a number.
Never a personal value, token, subject id or key in a label, a log field or a readiness answer.
"""
