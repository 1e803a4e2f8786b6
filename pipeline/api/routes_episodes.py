"""/episodes, /silences, /labels: incidents as people handle them.

An episode is read from the alerts Redis keeps (grouped by their episode id), so it is
known to the API for as long as its alerts are (about the last 10,000 alerts). What
people say about it (acknowledged, false positive, a note) is its label
(`pipeline.state.labels`), written with the admin token and kept after its alerts are
gone, until `vigil labels export` takes it out as labelled data.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from pipeline.api.deps import ERRORS, AdminOnly, ApiContext, Authorized, Context
from pipeline.api.reads import alerts_newest_first
from pipeline.api.schemas import ErrorBody
from pipeline.api.schemas_alerts import (
    AckRequest,
    EpisodeList,
    EpisodeSummary,
    FalsePositiveRequest,
    LabelBody,
    SilenceBody,
    SilenceList,
    SilenceRequest,
)
from pipeline.state.base import alerts_key
from pipeline.state.labels import (
    Label,
    active_silences,
    add_silence,
    all_labels,
    get_labels,
    now_ms,
    put_label,
    remove_silence,
)

router = APIRouter(tags=["episodes"], dependencies=Authorized, responses=ERRORS)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such episode among the alerts Redis keeps"}
}
EpisodeId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="episode id")]


def _episodes(context: ApiContext, stream: str | None = None) -> Iterator[EpisodeSummary]:
    """Episodes from the kept alerts, latest alert first (unlabelled)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    order: list[str] = []
    for alert in alerts_newest_first(context.redis, alerts_key(context.settings.redis_prefix)):
        episode = alert.get("episode")
        if not episode or (stream is not None and alert["stream"] != stream):
            continue
        if episode["id"] not in groups:
            order.append(episode["id"])
        groups.setdefault(episode["id"], []).append(alert)
    for episode_id in order:
        yield _summary(groups[episode_id])


def _summary(alerts: list[dict[str, Any]]) -> EpisodeSummary:
    """One episode from its alerts, newest first."""
    latest = alerts[0]
    ep = latest["episode"]
    resolved = latest.get("state") == "resolved"
    firing = [a for a in alerts if a.get("state") != "resolved"]
    reason = (firing[0].get("reason") or {}).get("text", "") if firing else ""
    return EpisodeSummary(
        id=ep["id"],
        stream=latest["stream"],
        state="resolved" if resolved else "firing",
        start_ms=ep["start_ms"],
        last_ts_ms=latest["ts_ms"],
        peak=max(float(a["episode"]["peak"]) for a in alerts),
        duration_s=float(ep["duration_s"]),
        alerts=len(alerts),
        reason=reason,
        meta=(firing[0] if firing else latest).get("meta", {}),
        label=None,
    )


def _with_labels(context: ApiContext, items: list[EpisodeSummary]) -> list[EpisodeSummary]:
    labels = get_labels(context.redis, context.settings.redis_prefix, [e.id for e in items])
    for e in items:
        if e.id in labels:
            e.label = LabelBody(**asdict(labels[e.id]))
    return items


def _find(context: ApiContext, episode_id: str) -> EpisodeSummary:
    for e in _episodes(context):
        if e.id == episode_id:
            return _with_labels(context, [e])[0]
    raise HTTPException(404, f"no episode {episode_id} among the alerts Redis keeps")


def matches(episode: EpisodeSummary, q: str) -> bool:
    """`key=value`: the event meta has that field with that value (as text); otherwise
    q is a case-insensitive part of the stream id or of any meta value."""
    key, sep, value = q.partition("=")
    if sep and key in episode.meta:
        return str(episode.meta[key]) == value
    needle = q.lower()
    texts = [episode.stream, *(str(v) for v in episode.meta.values())]
    return any(needle in t.lower() for t in texts)


@router.get("/episodes", response_model=EpisodeList)
def list_episodes(
    context: Context,
    stream: Annotated[str | None, Query(max_length=200)] = None,
    state: Annotated[str | None, Query(pattern="^(firing|resolved)$")] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="search: part of the stream id or a meta value, or meta key=value",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EpisodeList:
    """Episodes of the kept alerts, latest alert first, with their labels."""
    wanted = (
        e for e in _episodes(context, stream)
        if (state is None or e.state == state) and (q is None or matches(e, q))
    )  # fmt: skip
    items = _with_labels(context, list(itertools.islice(wanted, limit)))
    return EpisodeList(items=items, count=len(items))


@router.get("/episodes/{episode_id}", response_model=EpisodeSummary, responses=NOT_FOUND)
def get_episode(context: Context, episode_id: EpisodeId) -> EpisodeSummary:
    return _find(context, episode_id)


def _label_of(context: ApiContext, episode: EpisodeSummary) -> Label:
    found = get_labels(context.redis, context.settings.redis_prefix, [episode.id])
    return found.get(episode.id) or Label(
        episode=episode.id, stream=episode.stream, start_ms=episode.start_ms, peak=episode.peak
    )


@router.post(
    "/episodes/{episode_id}/ack", response_model=LabelBody, responses=NOT_FOUND,
    dependencies=AdminOnly,
)  # fmt: skip
def acknowledge(context: Context, episode_id: EpisodeId, body: AckRequest) -> LabelBody:
    """Someone is on it (admin token)."""
    label = _label_of(context, _find(context, episode_id))
    label.acknowledged_by, label.acknowledged_ms = body.by or "admin", now_ms()
    if body.note:
        label.note = body.note
    return LabelBody(**asdict(put_label(context.redis, context.settings.redis_prefix, label)))


@router.post(
    "/episodes/{episode_id}/false-positive", response_model=LabelBody, responses=NOT_FOUND,
    dependencies=AdminOnly,
)  # fmt: skip
def mark_false_positive(
    context: Context, episode_id: EpisodeId, body: FalsePositiveRequest
) -> LabelBody:
    """Mark the episode a false positive (or, with false_positive=false, a real one)."""
    label = _label_of(context, _find(context, episode_id))
    label.false_positive = body.false_positive
    label.note = body.note or label.note
    return LabelBody(**asdict(put_label(context.redis, context.settings.redis_prefix, label)))


@router.get("/labels", response_model=list[LabelBody])
def list_labels(
    context: Context, since_ms: Annotated[int, Query(ge=0, le=2**53)] = 0
) -> list[LabelBody]:
    """Every kept label changed at or after since_ms, oldest change first."""
    labels = all_labels(context.redis, context.settings.redis_prefix, since_ms)
    return [LabelBody(**asdict(label)) for label in labels]


@router.get("/silences", response_model=SilenceList)
def list_silences(context: Context) -> SilenceList:
    silences = active_silences(context.redis, context.settings.redis_prefix)
    return SilenceList(items=[SilenceBody(**asdict(s)) for s in silences])


@router.post(
    "/silences", response_model=SilenceBody, status_code=201, dependencies=AdminOnly,
    responses={409: {"model": ErrorBody, "description": "too many active silences"}},
)  # fmt: skip
def create_silence(context: Context, body: SilenceRequest) -> SilenceBody:
    """Silence one stream or a glob of streams for a duration: the sinks skip their
    alerts (the alerts topic and the dashboard still show them)."""
    stream, pattern = (body.value, None) if body.kind == "stream" else (None, body.value)
    try:
        silence = add_silence(
            context.redis, context.settings.redis_prefix, stream=stream, pattern=pattern,
            seconds=body.duration_s, by=body.by or "admin", note=body.note,
        )  # fmt: skip
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    return SilenceBody(**asdict(silence))


@router.delete(
    "/silences/{silence_id}", status_code=204, dependencies=AdminOnly,
    responses={404: {"model": ErrorBody, "description": "no such silence"}},
)  # fmt: skip
def delete_silence(
    context: Context, silence_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
) -> None:
    if not remove_silence(context.redis, context.settings.redis_prefix, silence_id):
        raise HTTPException(404, f"no silence {silence_id}")
