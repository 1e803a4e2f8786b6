"""/metrics in the Prometheus text format (0.0.4), written by hand.

Workers add their per-batch counters to one Redis hash (`{prefix}:metrics`, HINCRBYFLOAT
inside their fenced save), so the numbers here are totals over every worker, from
whichever API replica Prometheus scrapes. Hash fields read:

    records, applied, replays_skipped, alerts, batches     counters
    routed, state_losses, streams_restored                 counters
    batch_seconds_sum                                      histogram sum
    batch_le_<upper bound>                                 cumulative histogram buckets
    deadletter:<reason>                                    dead letters by reason
    model_version                                          the version last served
    trainer_last_success_s                                 epoch seconds of the last training
    lag:<topic>:<partition>                                consumer lag, if workers set it
    committed:<topic>:<partition>                          next offset whose states are saved

Unknown fields are ignored, so workers can add counters before the API shows them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import redis

from pipeline.state.base import alerts_key, metrics_key, scores_key

_COUNTERS = (
    ("records", "vigil_records_total", "Kafka records polled by workers."),
    ("applied", "vigil_events_applied_total", "Events applied to stream states."),
    ("replays_skipped", "vigil_replays_skipped_total", "Replayed events skipped."),
    ("alerts", "vigil_alerts_total", "Alerts published."),
    ("routed", "vigil_routed_total", "Key-less events re-published keyed by stream id."),
    ("state_losses", "vigil_state_losses_total", "Times a worker found Redis forgot states."),
    ("streams_restored", "vigil_streams_restored_total", "States restored from the changelog."),
)


def label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return str(int(x)) if x == int(x) and abs(x) < 2**53 else repr(x)


def _float(raw: str | None) -> float:
    try:
        return float(raw) if raw is not None else 0.0
    except ValueError:
        return 0.0


def render_metrics(
    fields: Mapping[str, str], streams: int | None, alerts_kept: int | None, redis_up: bool
) -> str:
    """The exposition text for the counters hash plus what the API reads itself."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {_num(value)}" for labels, value in samples)

    metric("vigil_redis_up", "gauge", "1 if the API could read Redis.", [("", float(redis_up))])
    if streams is not None:
        metric("vigil_streams", "gauge", "Streams with a score in Redis.", [("", streams)])
    if alerts_kept is not None:
        metric("vigil_alerts_kept", "gauge", "Recent alerts kept in Redis.", [("", alerts_kept)])
    for field, name, help_text in _COUNTERS:
        metric(name, "counter", help_text, [("", _float(fields.get(field)))])

    reasons = sorted(f.removeprefix("deadletter:") for f in fields if f.startswith("deadletter:"))
    metric(
        "vigil_deadletters_total", "counter", "Records sent to the dead-letter topic, by reason.",
        [(f'{{reason="{label(r)}"}}', _float(fields[f"deadletter:{r}"])) for r in reasons],
    )  # fmt: skip

    bounds = sorted(
        (_float(f.removeprefix("batch_le_")), f) for f in fields if f.startswith("batch_le_")
    )
    batches = _float(fields.get("batches"))
    buckets = [(f'{{le="{_num(b)}"}}', _float(fields[f])) for b, f in bounds]
    buckets.append(('{le="+Inf"}', batches))
    name = "vigil_batch_duration_seconds"
    lines.append(f"# HELP {name} Wall time of one worker batch, poll to save.")
    lines.append(f"# TYPE {name} histogram")
    lines.extend(f"{name}_bucket{labels} {_num(v)}" for labels, v in buckets)
    lines.append(f"{name}_sum {_num(_float(fields.get('batch_seconds_sum')))}")
    lines.append(f"{name}_count {_num(batches)}")

    lags = []
    for f in sorted(fields):
        if f.startswith("lag:"):
            topic, _, partition = f.removeprefix("lag:").rpartition(":")
            labels = f'{{topic="{label(topic)}",partition="{label(partition)}"}}'
            lags.append((labels, _float(fields[f])))
    if lags:
        metric("vigil_consumer_lag", "gauge", "Records behind the end of each partition.", lags)

    trained = fields.get("trainer_last_success_s")
    if trained:
        metric("vigil_trainer_last_success_timestamp_seconds", "gauge",
               "When a training run last finished (epoch seconds).",
               [("", _float(trained))])  # fmt: skip

    version = fields.get("model_version")
    if version:
        metric("vigil_model_info", "gauge", "The model version workers serve.",
               [(f'{{version="{label(version)}"}}', 1.0)])  # fmt: skip
    return "\n".join(lines) + "\n"


def collect_metrics(client: redis.Redis, prefix: str) -> str:
    """Read the counters hash and the API's own gauges; Redis down gives redis_up 0."""
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(metrics_key(prefix))
        pipe.zcard(scores_key(prefix))
        pipe.xlen(alerts_key(prefix))
        raw, streams, kept = pipe.execute()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        return render_metrics({}, None, None, redis_up=False)
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    return render_metrics(fields, int(streams), int(kept), redis_up=True)
