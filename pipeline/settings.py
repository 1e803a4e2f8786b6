"""Vigil's settings: one pydantic-settings class, built once in `main` and passed down.

Values come, highest priority first, from: explicit overrides (CLI flags), `VIGIL_*`
environment variables, an optional TOML file given with `--config`, then the defaults
below. Nothing reads the environment at import time, and a `Settings` is pure data: the
local stack's recorded addresses are filled in by the CLI (`pipeline.cli.flags`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from pipeline.service_links import WithoutServiceLinks

ENV_PREFIX = "VIGIL_"


# Variables with the prefix that are read elsewhere, not settings: where the local stack
# records itself, and the demo's extra NAB folder.
NOT_SETTINGS = frozenset(("VIGIL_HOME", "VIGIL_NAB_DIR"))


class SettingsError(Exception):
    """A user mistake in settings; the CLI prints it as one line and exits non-zero."""


def vigil_home() -> Path:
    """Where the local stack records its addresses (VIGIL_HOME, else ~/.vigil)."""
    return Path(os.environ.get("VIGIL_HOME", str(Path.home() / ".vigil")))


def stack_file() -> Path:
    """Where `vigil stack up` records its addresses (read by `pipeline.cli.flags`)."""
    return vigil_home() / "stack.json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="forbid", validate_default=True)

    # --- Kafka -------------------------------------------------------------------
    bootstrap_servers: str = Field(
        default="", description="host:port[,host:port]; empty = the local stack's broker"
    )
    events_topic: str = "vigil.events"
    alerts_topic: str = "vigil.alerts"
    deadletter_topic: str = "vigil.deadletter"
    changelog_topic: str = Field(
        default="vigil.changelog",
        description="compacted topic of every saved state, to restore what Redis forgets; "
        "empty = off (a worker that finds Redis lost states then stops)",
    )
    group_id: str = "vigil"
    topic_partitions: int = Field(default=4, ge=1, le=10_000)
    session_timeout_ms: int = Field(default=6000, ge=1000)
    # Large batches amortise the per-stream work (one state load and save per stream per
    # batch); under light load a poll returns what has arrived, so batches stay small.
    max_poll_records: int = Field(default=50_000, ge=1, le=100_000)
    batch_budget_ms: int = Field(
        default=0,
        ge=0,
        le=60_000,
        description="take at most this long's worth of records per poll, by the worker's "
        "recent cost per record (pipeline.worker.budget); 0 (default) = only "
        "max_poll_records",
    )
    # Changed states are saved to Redis (then offsets committed) at most this long after
    # they changed; 0 = after every batch.
    commit_interval_ms: int = Field(default=1000, ge=0, le=60_000)
    max_cached_streams: int = Field(
        default=1_250_000,
        ge=1,
        description="states a worker holds in memory between checkpoints; beyond it the "
        "least recently used quarter is dropped after a save (about 0.9 KB each at hidden "
        "64, plus the stream id: deploy/README.md, worker memory)",
    )
    poll_timeout_ms: int = Field(default=200, ge=1)
    max_message_bytes: int = Field(default=64 * 1024, ge=256)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: str = ""
    kafka_backend: Literal["kafka-python", "confluent"] = Field(
        default="kafka-python",
        description="Kafka client library: kafka-python or confluent (librdkafka)",
    )

    startup_wait_seconds: float = Field(
        default=120.0,
        ge=0,
        le=86_400,
        description="at start, wait this long for Redis and the broker (with back-off) "
        "before giving up with exit status 2",
    )

    # --- An existing topic's own field names (`pipeline/contracts/mapping.py`) ------
    # Empty event_features: records follow Vigil's event contract (the fast path).
    event_features: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="mapped topic: the numeric fields (dotted paths, comma-separated in the "
        "environment) that are the features; empty = Vigil's event contract",
    )
    event_stream_field: str = Field(
        default="", description="mapped topic: the stream id's field; empty = the record key"
    )
    event_ts_field: str = Field(default="ts", description="mapped topic: the timestamp's field")
    event_ts_format: Literal["auto", "iso8601", "epoch_s", "epoch_ms"] = Field(
        default="auto",
        description="mapped topic: auto = ISO 8601, or epoch seconds/ms told apart at 1e11",
    )
    event_meta_fields: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="mapped topic: fields carried into alerts as meta; empty = every "
        "top-level field the mapping does not use",
    )

    # --- Redis -------------------------------------------------------------------
    redis_url: SecretStr = Field(
        default=SecretStr(""),
        description="redis://[:password@]host:port/db, or redis+cluster://host:port (any node "
        "of a Redis Cluster); empty = local stack",
    )
    redis_prefix: str = "vigil"
    # On by default so the dashboard has charts: 240 points of a one-feature stream are
    # 5 KiB of Redis per stream (10,000 streams: about 50 MB beside 10 MB of states).
    history_length: int = Field(
        default=240,
        ge=0,
        le=100_000,
        description="points of history per stream kept for the API (13 + 8 x features bytes "
        "each in Redis: 5 KiB per one-feature stream at 240); 0 keeps only the state, under "
        "1 KiB per stream at hidden size 64",
    )

    peak_bucket_seconds: int = Field(
        default=3600,
        ge=60,
        le=86400,
        description="time buckets of the per-stream peak scores that rank past incidents",
    )
    peak_retention_hours: float = Field(
        default=168.0, gt=0, description="how long a bucket of peak scores is kept"
    )

    # --- Detector ----------------------------------------------------------------
    model_kind: Literal["gru", "lstm"] = "gru"
    hidden_size: int = Field(default=64, ge=4, le=1024)
    max_features: int = Field(default=4, ge=1, le=64)
    model_dir: str = Field(default="", description="model registry directory; empty = shipped")
    warmup_events: int = Field(default=48, ge=1)
    alert_threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    alert_clear: float = Field(default=0.3, ge=0.0, le=1.0)
    alert_quiet_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="an alert episode ends after this long without a score >= alert_clear; "
        "inside an episode only a clearly stronger score alerts again",
    )
    range_channel: bool = Field(
        default=True,
        description="score values beyond a stream's running min/max (after 450 events); "
        "turn off for heavy-tailed streams, such as transaction amounts, where a new "
        "record is routine",
    )
    max_abs_value: float = Field(default=1e12, gt=0)
    max_future_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="an event time further ahead of the worker's clock is dead-lettered "
        "(future_timestamp): applied, it would make every later event of its stream "
        "out_of_order",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    torch_threads: int = Field(default=1, ge=1, le=256)

    # --- API ---------------------------------------------------------------------
    api_host: str = Field(default="127.0.0.1", description="non-loopback needs api_token")
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_token: SecretStr = Field(
        default=SecretStr(""), description="bearer token; empty = no auth (loopback only)"
    )
    live_max_clients: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="live alert feed (/alerts/live) clients per API process; beyond: 503",
    )
    live_ping_seconds: float = Field(
        default=15.0, gt=0, le=300, description="SSE keep-alive comment after this much silence"
    )

    api_viewer_token: SecretStr = Field(
        default=SecretStr(""),
        description="bearer token for reads only (dashboard viewers); api_token can do all",
    )

    # --- Alert sinks beside the alerts topic (best effort, never blocking) ----------
    alertmanager_url: str = Field(
        default="", description="Prometheus Alertmanager base URL (its v2 API); empty = off"
    )
    webhook_url: str = Field(default="", description="POST every alert's JSON here; empty = off")
    sink_queue_size: int = Field(
        default=10_000, ge=1, le=1_000_000, description="alerts a sink may hold back"
    )
    sink_retries: int = Field(default=5, ge=0, le=100)
    sink_timeout_s: float = Field(default=5.0, gt=0, le=120)
    dashboard_url: str = Field(default="", description="public URL of the dashboard, for links")

    # --- Worker health, metrics and logs ---------------------------------------------
    progress_log_seconds: float = Field(
        default=15.0, ge=0, description="a worker logs its counts and lag this often; 0 = off"
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per log line, for log collectors"
    )
    worker_http_host: str = Field(
        default="127.0.0.1", description="address of the worker's /healthz, /readyz, /metrics"
    )
    worker_http_port: int = Field(
        default=0, ge=0, le=65535, description="port of the worker's probes and metrics; 0 = off"
    )
    worker_stall_seconds: float = Field(
        default=300.0,
        ge=0,
        description="/healthz fails once the worker has processed no batch and the group "
        "has not settled for this long (a rebalance that never completes, or one after "
        "another); 0 = off",
    )

    # --- Trainer -----------------------------------------------------------------
    train_interval_minutes: float = Field(default=60.0, gt=0)
    train_cron: str = Field(
        default="", description="crontab line (5 fields); when set it replaces the interval"
    )
    train_max_records: int = Field(default=1_000_000, ge=100, description="history read budget")
    train_max_seconds: float = Field(default=300.0, gt=0, description="history read time budget")
    train_epochs: int = Field(default=30, ge=1, le=1000)
    trainer_poll_seconds: float = Field(default=2.0, gt=0, description="on-demand request check")
    trainer_lock_seconds: float = Field(default=60.0, ge=1, description="lock TTL, renewed")
    model_poll_seconds: float = Field(default=2.0, ge=0, description="workers' live-model check")

    @field_validator("bootstrap_servers")
    @classmethod
    def _bootstrap_shape(cls, value: str) -> str:
        for part in filter(None, value.split(",")):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"expected host:port, got {part!r}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        schemes = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
        if url and not url.startswith(schemes):
            raise ValueError(f"must start with {', '.join(schemes[:-1])} or {schemes[-1]}")
        return value

    @field_validator("alertmanager_url", "webhook_url", "dashboard_url")
    @classmethod
    def _http_scheme(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("event_features", "event_meta_fields", mode="before")
    @classmethod
    def _field_list(cls, value: Any) -> Any:
        """`amount,fee` from the environment or a flag; a list from a TOML file."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _hysteresis(self) -> Settings:
        if self.alert_clear > self.alert_threshold:
            raise ValueError("alert_clear must not exceed alert_threshold")
        return self

    @model_validator(mode="after")
    def _mapping(self) -> Settings:
        mapped = (
            self.event_stream_field,
            self.event_ts_field != "ts",
            self.event_ts_format != "auto",
            self.event_meta_fields,
        )
        if not self.event_features and any(mapped):
            raise ValueError("a field mapping needs event_features (the numeric fields)")
        paths = [*self.event_features, *self.event_meta_fields, self.event_stream_field]
        for path in [*paths, self.event_ts_field]:
            if (path and not all(path.split("."))) or path != path.strip():
                raise ValueError(f"field path {path!r} has an empty part")
        if len(self.event_features) > self.max_features:
            raise ValueError(f"event_features lists more than max_features ({self.max_features})")
        return self

    def replace(self, **changes: Any) -> Settings:
        """A validated copy with some fields changed (model_copy would skip validation)."""
        return type(self).model_validate({**self.model_dump(), **changes})

    # --- resolved addresses -------------------------------------------------------
    def kafka_bootstrap(self) -> str:
        """The broker address; SettingsError (one line) when none is configured."""
        if self.bootstrap_servers:
            return self.bootstrap_servers
        raise SettingsError(
            "no Kafka broker configured: set VIGIL_BOOTSTRAP_SERVERS or run `vigil stack up`"
        )

    def redis_address(self) -> str:
        """The Redis URL; SettingsError (one line) when none is configured."""
        url = self.redis_url.get_secret_value()
        if url:
            return url
        raise SettingsError("no Redis configured: set VIGIL_REDIS_URL or run `vigil stack up`")

    def kafka_security(self) -> dict[str, Any]:
        """Security options in kafka-python's keyword names; the password stays secret."""
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_cafile:
            options["ssl_cafile"] = self.kafka_ssl_cafile
        return options

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, WithoutServiceLinks(settings_cls, env_settings, ENV_PREFIX))
