"""The trainer's Redis lock: one training run at a time across `vigil trainer` replicas.

SET NX PX with a random owner token; renewed while a run lasts; renewed and released by
Lua compare-and-set scripts, so a replica can never extend or free a lock it no longer
owns (it was paused past the TTL and another replica took it).
"""

from __future__ import annotations

import logging
import secrets
import threading

import redis

log = logging.getLogger(__name__)


class LockLost(Exception):
    """The lock expired while its owner worked (paused past the TTL): the work is void."""


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class TrainerLock:
    """A Redis lock with an owner token: only its owner renews or releases it."""

    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = max(100, int(ttl_seconds * 1000))
        self.token = secrets.token_hex(16)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))

    def release(self) -> bool:
        return bool(self._release(keys=[self.key], args=[self.token]))


class Renewer(threading.Thread):
    """Keeps a held lock alive while a run lasts; notes if it was lost."""

    def __init__(self, lock: TrainerLock) -> None:
        super().__init__(name="trainer-lock-renewer", daemon=True)
        self.lock = lock
        self.lost = False
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.lock.ttl_ms / 3000.0):
            try:
                if not self.lock.renew():
                    self.lost = True
                    return
            except redis.RedisError as exc:
                log.warning("could not renew the trainer lock: %s", exc)

    def stop(self) -> None:
        self._done.set()
        self.join()
