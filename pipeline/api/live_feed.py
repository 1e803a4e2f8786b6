"""The live alert feed: ONE Redis reader per API process, fanned out to many SSE clients.

A feed client used to open its own Redis connection and block in XREAD on it. That made
every dashboard tab cost a Redis connection (200 tabs used up Redis's clients and a
worker could no longer connect), and the connection's default socket timeout (5 s in
redis-py 8) broke every feed that saw no alert for 5 s. Here one task per process
follows the alerts stream on a connection with no socket timeout (XREAD BLOCK is a wait,
not a hang; TCP keep-alive still notices a dead peer) and hands every entry to each
client's bounded queue. Clients beyond `live_max_clients` are refused with a 503.

A client that resumes (Last-Event-ID) reads what it missed with one XRANGE on a small
shared pool, after subscribing, so nothing falls between the catch-up and the live
entries; entries are compared by id and never sent twice. A client too slow to keep up
with its queue is disconnected; its browser reconnects with Last-Event-ID and catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pipeline.api.reads import AlertRow, alert_matches, decode_alert
from pipeline.settings import Settings
from pipeline.state.base import alerts_key

log = logging.getLogger(__name__)

BLOCK_MS = 10_000
"""How long one XREAD waits; with no socket timeout this only bounds how soon a stopped
feed notices it should end."""
QUEUE_SIZE = 1000
"""Entries a client may fall behind before it is disconnected (it then resumes)."""
CATCH_UP_MAX = 10_000
"""At most this many missed entries are replayed to a resuming client (Redis keeps about
as many)."""
RETRY_MAX_S = 5.0
# No socket timeout on the blocking reader, so TCP keep-alive is what notices a peer that
# vanished without a word: probes after 30 s idle, every 10 s, 3 missed = dead.
_KEEPALIVE = (
    {socket.TCP_KEEPIDLE: 30, socket.TCP_KEEPINTVL: 10, socket.TCP_KEEPCNT: 3}
    if hasattr(socket, "TCP_KEEPIDLE")
    else {}
)


class FeedFull(Exception):
    """The process already serves `live_max_clients` feed clients."""


def entry_key(entry_id: str) -> tuple[int, int]:
    """A Redis stream id as a comparable pair: "1700000000000-3" -> (1700000000000, 3)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(eq=False)  # compared (and hashed) by identity: one per connection
class _Client:
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )
    overflowed: bool = False
    closing: bool = False  # the server is stopping


class AlertFeed:
    """Follows one Redis stream of alerts and fans its entries out to subscribers."""

    def __init__(self, url: str, key: str, max_clients: int) -> None:
        self.key = key
        self.max_clients = max_clients
        # Two connections at most per process, whatever the number of clients: the
        # blocking reader, and a small pool for the "where is the end" and catch-up reads.
        self._reader = aioredis.Redis.from_url(
            url, socket_connect_timeout=3.0, socket_timeout=None, socket_keepalive=True,
            socket_keepalive_options=_KEEPALIVE, max_connections=1,
        )  # fmt: skip
        # Blocking pool: a burst of new clients waits for one of its connections.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, socket_connect_timeout=3.0, socket_timeout=10.0, max_connections=2, timeout=30
        )
        self._reads = aioredis.Redis(connection_pool=pool)
        self._clients: set[_Client] = set()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for client in self._clients:
            client.queue.put_nowait(None)
        await self._reader.aclose()
        await self._reads.aclose()

    def subscribe(self) -> _Client:
        """Join the fan-out; raises FeedFull beyond the cap. Starts the reader if needed."""
        if len(self._clients) >= self.max_clients:
            raise FeedFull(f"the live feed serves its limit of {self.max_clients} clients")
        client = _Client()
        self._clients.add(client)
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._follow())
        return client

    def end_clients(self) -> None:
        """End every open feed (the server is stopping: browsers reconnect elsewhere).
        Safe from a signal handler or another thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._end_all)

    def _end_all(self) -> None:
        for client in list(self._clients):
            client.closing = True
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(None)  # wakes it; a full queue wakes it anyway

    def unsubscribe(self, client: _Client) -> None:
        self._clients.discard(client)

    async def newest_id(self) -> str:
        """The id of the newest entry Redis keeps ("0-0" if none): where "now" starts."""
        rows = cast("list[AlertRow]", await self._reads.xrevrange(self.key, count=1))
        return rows[0][0].decode() if rows else "0-0"

    async def missed(self, after: str) -> list[dict[str, Any]]:
        """Entries after `after` that Redis still keeps, oldest first."""
        rows = cast(
            "list[AlertRow]",
            await self._reads.xrange(self.key, min=f"({after}", max="+", count=CATCH_UP_MAX),
        )
        return [decode_alert(entry_id, fields) for entry_id, fields in rows]

    async def _follow(self) -> None:
        last = "$"
        delay = 0.1
        while True:
            try:
                if last == "$":  # resolve "now" once, so nothing between two reads is lost
                    last = await self.newest_id()
                reply = await self._reader.xread({self.key: last}, count=500, block=BLOCK_MS)
                delay = 0.1
            except RedisError as exc:
                log.warning("live feed: Redis unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            rows = cast("list[tuple[bytes, list[AlertRow]]]", reply or [])
            for entry_id, fields in rows[0][1] if rows else []:
                body = decode_alert(entry_id, fields)
                last = body["cursor"]
                self._publish(body)

    def _publish(self, body: dict[str, Any]) -> None:
        for client in list(self._clients):
            try:
                client.queue.put_nowait(body)
            except asyncio.QueueFull:
                client.overflowed = True
                self._clients.discard(client)


def live_feed(app: Any, settings: Settings) -> AlertFeed:
    """The app's feed, made on first use inside the server's event loop (its connections
    belong to that loop); `close_live_feed` ends it when the app shuts down."""
    feed: AlertFeed | None = getattr(app.state, "live_feed", None)
    if feed is None:
        key = alerts_key(settings.redis_prefix)
        feed = AlertFeed(settings.redis_address(), key, settings.live_max_clients)
        app.state.live_feed = feed
    return feed


async def close_live_feed(app: Any) -> None:
    feed: AlertFeed | None = getattr(app.state, "live_feed", None)
    if feed is not None:
        app.state.live_feed = None
        await feed.close()


def _event(body: dict[str, Any]) -> bytes:
    data = json.dumps(body, separators=(",", ":"))
    return f"id: {body['cursor']}\nevent: alert\ndata: {data}\n\n".encode()


async def sse_stream(
    feed: AlertFeed,
    client: _Client,
    start: str | None,
    stream: str | None,
    min_score: float | None,
    ping_seconds: float,
) -> AsyncIterator[bytes]:
    """One client's Server-Sent Events: catch-up after `start`, then live entries, and a
    `: ping` comment whenever `ping_seconds` pass without one (proxies and browsers
    close connections that stay silent)."""
    try:
        last = entry_key(start) if start is not None else entry_key(await feed.newest_id())
        yield b"retry: 3000\n: connected\n\n"
        backlog = await feed.missed(start) if start is not None else []
        for missed in backlog:
            last = entry_key(missed["cursor"])
            if alert_matches(missed, stream, min_score):
                yield _event(missed)
        while True:
            try:
                body = await asyncio.wait_for(client.queue.get(), ping_seconds)
            except asyncio.TimeoutError:
                yield b": ping\n\n"
                continue
            if client.closing:
                yield b": server stopping, reconnect\n\n"
                return
            if body is None or client.overflowed:
                yield b": too slow, reconnect with Last-Event-ID\n\n"
                return
            position = entry_key(body["cursor"])
            if position <= last:
                continue  # already sent by the catch-up read
            last = position
            if alert_matches(body, stream, min_score):
                yield _event(body)
    finally:
        feed.unsubscribe(client)
