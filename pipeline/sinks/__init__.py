"""Alert destinations beside the Kafka topic: Prometheus Alertmanager and a webhook.

Delivery is best effort and never in the worker's way: the worker hands each batch's
alerts (after the broker acknowledged them on the alerts topic, which stays the record
of truth) to a `SinkSender` per sink, a bounded queue drained by a background thread
that retries with backoff. A dead sink fills its queue; then the oldest undelivered
alerts are dropped and counted, and the worker carries on.
"""
