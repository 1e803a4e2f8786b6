"""Step 3 of the worker loop for one round: judge its events, step the detector, alert.

A round holds at most one event per stream (`BatchColumns.rounds`), so one batched
detector call applies it; everything a batch's rounds share is a `BatchRounds`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detectors.detector import RecurrentDetector
from detectors.policy import NONE
from pipeline.contracts.alerts import Alert
from pipeline.contracts.columns import DecodedBatch
from pipeline.contracts.deadletter import reject
from pipeline.kafka.base import RecordBatch
from pipeline.worker.alerting import alerts_of_round
from pipeline.worker.batch import BatchColumns, ViewBuilder
from pipeline.worker.checkpoint import gather, scatter
from pipeline.worker.ordering import judge_round
from pipeline.worker.stats import WorkerStats


@dataclass
class BatchRounds:
    """One batch on its way through its rounds: `states` [streams] are updated in place,
    `alerts` and the decoded batch's rejections grow, `view` collects the API's points."""

    decoded: DecodedBatch
    batch: RecordBatch
    cols: BatchColumns
    states: np.ndarray
    view: ViewBuilder
    horizon_ms: int  # the latest event time accepted (this worker's clock + the margin)
    max_future_seconds: float
    alerts: list[Alert] = field(default_factory=list)


def apply_round(
    members: np.ndarray, run: BatchRounds, detector: RecurrentDetector, stats: WorkerStats
) -> np.ndarray:
    """Apply one event per stream (`members`: indices into the batch's events);
    returns the stream indices whose state changed."""
    cols, decoded, batch = run.cols, run.decoded, run.batch
    sidx, part, offs = cols.sidx[members], cols.part[members], cols.offs[members]
    ts, ftag = cols.ts[members], cols.ftag[members]
    st = gather(run.states, sidx)
    replay, refused = judge_round(st, part, offs, ts, ftag, run.horizon_ms, run.max_future_seconds)
    stats.replays_skipped += int(replay.sum())
    ok = ~replay
    for flag, reason, why in refused:
        ok &= ~flag
        for j in members[flag].tolist():
            decoded.rejected.append(reject(batch.record(decoded.rows[j]), reason, why))
    good = np.flatnonzero(ok)
    if len(good) == 0:
        return np.zeros(0, dtype=np.int64)

    events = members[good]
    before = st if len(good) == len(members) else gather(st, good)
    out = detector.step(cols.x[events], cols.mask[events], before, ts[good])
    new = out.states
    new["partition"], new["offset"], new["last_ts"] = part[good], offs[good], ts[good]
    new["feature_tag"] = ftag[good]
    scatter(run.states, sidx[good], new)
    stats.applied += len(good)
    stats.rewarmed += int(out.rewarmed.sum())
    run.view.add(events, out)

    acting = np.flatnonzero(out.action != NONE)
    if len(acting):
        name = f"{detector.name}/{detector.loaded.config.kind}"
        found = []
        for j in events[acting].tolist():
            r = decoded.rows[j]
            found.append(decoded.event(j, batch.partitions[r], batch.offsets[r], batch.topics[r]))
        run.alerts += alerts_of_round(
            found, out, acting.tolist(), before[acting], detector.version, name
        )
    return sidx[good]
