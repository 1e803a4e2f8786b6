"""Consumer lag from the group's committed offsets, read from the broker when scraped.

The lag a worker reports about itself stops changing when the worker stops, which is
exactly when lag matters. The committed offsets live in the broker, so the API asks it:
per partition of the events topic, end offset minus the group's committed offset (the
partition's start when the group never committed there). A stopped worker therefore
shows lag rising as records keep arriving. Any broker error gives no samples (and
`vigil_consumer_group_lag_up 0`) rather than a failed scrape.
"""

from __future__ import annotations

import logging

from kafka import KafkaConsumer, TopicPartition

from pipeline.api.metrics import label
from pipeline.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_MS = 3000


def committed_lag(settings: Settings) -> dict[tuple[str, int], int] | None:
    """(topic, partition) -> records not yet committed by the group; None if unreadable."""
    common = {
        "bootstrap_servers": settings.kafka_bootstrap(),
        "request_timeout_ms": TIMEOUT_MS + 1000,
        "bootstrap_timeout_ms": TIMEOUT_MS,
        **settings.kafka_security(),
    }
    consumer = None
    try:
        # A consumer in the group that never subscribes: it reads the group's committed
        # offsets from the coordinator without joining (no rebalance for the workers).
        consumer = KafkaConsumer(client_id="vigil-api-lag", group_id=settings.group_id,
                                 enable_auto_commit=False, **common)  # fmt: skip
        partitions = consumer.partitions_for_topic(settings.events_topic) or set()
        tps = [TopicPartition(settings.events_topic, p) for p in sorted(partitions)]
        ends = consumer.end_offsets(tps)
        starts = consumer.beginning_offsets(tps)
        committed = {tp: consumer.committed(tp) for tp in tps}
    except Exception as exc:  # the broker is away or refuses: no lag this scrape
        log.warning("could not read the consumer group's lag: %s", exc)
        return None
    finally:
        if consumer is not None:
            consumer.close(autocommit=False)
    lag = {}
    for tp in tps:
        done = committed[tp] if committed[tp] is not None else starts[tp]
        lag[(tp.topic, tp.partition)] = max(int(ends[tp]) - int(done), 0)
    return lag


def render_lag(lag: dict[tuple[str, int], int] | None, group: str) -> str:
    """Exposition text: the lag per partition and whether it could be read."""
    lines = [
        "# HELP vigil_consumer_group_lag_up 1 if the API could read the group's offsets.",
        "# TYPE vigil_consumer_group_lag_up gauge",
        f"vigil_consumer_group_lag_up {0 if lag is None else 1}",
        "# HELP vigil_consumer_group_lag Records of the events topic the group has not "
        "committed, from the broker (rises while workers are stopped).",
        "# TYPE vigil_consumer_group_lag gauge",
    ]
    for (topic, partition), n in sorted((lag or {}).items()):
        labels = f'group="{label(group)}",topic="{label(topic)}",partition="{partition}"'
        lines.append(f"vigil_consumer_group_lag{{{labels}}} {n}")
    return "\n".join(lines) + "\n"
