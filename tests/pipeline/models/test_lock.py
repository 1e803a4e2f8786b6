"""The trainer lock on the session's real Redis: only its owner renews or releases it."""

from __future__ import annotations

import time

import redis

from pipeline.models.lock import TrainerLock


def test_an_expired_lock_is_not_released_by_its_old_owner(
    redis_client: redis.Redis,
) -> None:
    a = TrainerLock(redis_client, "lock-test", ttl_seconds=0.2)
    b = TrainerLock(redis_client, "lock-test", ttl_seconds=5)
    assert a.acquire()
    assert not b.acquire()
    time.sleep(0.4)
    assert b.acquire()  # a's lock expired
    assert not a.renew() and not a.release()
    assert redis_client.get("lock-test") == b.token.encode()
    assert b.release()
