"""Exporting ``client.stats()`` to Prometheus and OpenTelemetry.

Tracks a few events, then prints what a Prometheus scrape and an OpenTelemetry
collection see. With ``--serve PORT`` it keeps serving ``/metrics`` on that port for a
Prometheus server to scrape, as an application would.

Run it against the local data plane::

    rudder-analytics dev-server --port 8080 &
    export RUDDER_WRITE_KEY=test-write-key RUDDER_DATA_PLANE_URL=http://127.0.0.1:8080
    python examples/metrics_exporter.py                # or: --serve 9464
"""

from __future__ import annotations

import argparse
import sys
import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import REGISTRY, generate_latest, start_http_server

from rudder_analytics import Client
from rudder_analytics.integrations import otel, prometheus


def main(argv: list[str]) -> int:
    """Track, flush, then show both exports (or serve Prometheus with --serve)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, metavar="PORT", help="serve /metrics on PORT")
    args = parser.parse_args(argv)

    client = Client()  # RUDDER_WRITE_KEY and RUDDER_DATA_PLANE_URL
    prometheus.register(client)  # into prometheus_client's default REGISTRY
    # In production the reader would be a PeriodicExportingMetricReader (e.g. OTLP).
    reader = InMemoryMetricReader()
    otel.instrument(client, meter_provider=MeterProvider(metric_readers=[reader]))

    for n in range(5):
        client.track(user_id=f"u{n}", event="Report Generated", properties={"n": n})
    delivered = client.flush(timeout=30)

    scrape = generate_latest(REGISTRY).decode()
    print("\n".join(line for line in scrape.splitlines()
                    if line.startswith("rudder_analytics_") and "dropped" not in line))
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "rudder_analytics.events.delivered":
                    point = next(iter(metric.data.data_points))
                    print(f"otel {metric.name} = {point.value}")

    if args.serve:
        start_http_server(args.serve, addr="127.0.0.1")
        print(f"serving http://127.0.0.1:{args.serve}/metrics (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    client.shutdown()
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
