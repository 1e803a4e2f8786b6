"""Start-up: wait for Redis and the broker instead of exiting when they are not up yet.

Pods and services start in any order (a Kubernetes rollout, `docker compose up`, a host
reboot): a worker that exits because Redis or the broker answers a few seconds late only
crash-loops with growing back-off. So the worker waits, with exponential back-off and one
log line per attempt naming what it waits for, up to `startup_wait_seconds`; then it gives
up with one line and exit status 2. A mistake that waiting cannot fix (a bad topic name, a
wrong Redis password) fails at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from pipeline.errors import UserError
from pipeline.kafka.topics import BrokerUnreachable
from pipeline.settings import Settings
from pipeline.state.redis import connect_redis
from pipeline.worker.wiring import create_topics

log = logging.getLogger(__name__)

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0
ATTEMPT_S = 5.0
"""How long one attempt to reach the broker may take (kafka-python's bootstrap wait)."""


def redis_location(url: str) -> str:
    """host:port (or the socket path) of a Redis URL; never the password it may carry."""
    kwargs = redis.ConnectionPool.from_url(url.replace("+cluster://", "://", 1)).connection_kwargs
    return str(kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}")


def _ping_redis(settings: Settings) -> None:
    client = connect_redis(settings.redis_address())
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise UserError(f"Redis refused the credentials: {exc}") from None
    finally:
        client.close()


def wait_for_services(settings: Settings, stop: threading.Event | None = None) -> bool:
    """Block until Redis answers and the worker's topics exist (created if missing).

    Returns False if `stop` was set while waiting (the worker should exit cleanly); raises
    UserError after `startup_wait_seconds` (0: one attempt) or on a mistake.
    """
    stop = stop or threading.Event()
    deadline = time.monotonic() + settings.startup_wait_seconds

    def topics() -> None:  # short attempts: the log says what is happening
        left = deadline - time.monotonic()
        create_topics(settings, timeout_s=min(ATTEMPT_S, max(1.0, left)))

    checks: list[tuple[str, str, Callable[[], object]]] = [
        ("Redis", redis_location(settings.redis_address()), lambda: _ping_redis(settings)),
        ("Kafka", settings.kafka_bootstrap(), topics),
    ]
    for name, where, check in checks:
        delay = FIRST_DELAY_S
        while True:
            try:
                check()
                break
            except (redis.RedisError, BrokerUnreachable) as exc:
                reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
                reason = reason or type(exc).__name__
                left = deadline - time.monotonic()
                if left <= 0:
                    waited = settings.startup_wait_seconds
                    raise UserError(
                        f"{name} at {where} unreachable (gave up after {waited:g} s, "
                        f"startup_wait_seconds): {reason}"
                    ) from None
                pause = min(delay, left)
                log.warning("waiting for %s at %s (%s); next try in %.1f s, giving up in %.0f s",
                            name, where, reason, pause, left)  # fmt: skip
                if stop.wait(pause):
                    return False
                delay = min(delay * 2, MAX_DELAY_S)
    return True
