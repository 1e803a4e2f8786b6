"""Training history read back from a real topic (and from CSV), cut into sequences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detectors.training.train import normalise_sequences
from pipeline.contracts.csvfile import CsvError
from pipeline.contracts.events import encode_event
from pipeline.local.stack import StackInfo
from pipeline.models.training_data import (
    History,
    StreamSeries,
    TrainingDataError,
    build_training_set,
    read_csv,
    read_topic,
)
from pipeline.worker.wiring import create_topics
from tests.pipeline.kafka.helpers import produce, sensor_events, test_settings

T0 = 1_763_700_000_000


def test_reads_the_topic_as_the_worker_would_apply_it(stack: StackInfo, topic_names: Any) -> None:
    s = test_settings(stack, topic_names, topic_partitions=3)
    create_topics(s)
    good = sensor_events(n_streams=6, per_stream=50, spike_at=None)
    bad = [
        (b"s-0000", b"{not json"),
        (b"s-0000", encode_event("s-0000", T0, 1.0)),  # older than the stream's last event
        (b"s-0001", encode_event("s-0001", T0 + 99 * 60_000, {"x": 1.0})),  # other features
    ]
    produce(s.bootstrap_servers, s.events_topic, good + bad)

    history = read_topic(s, max_records=10_000, max_seconds=60, idle_seconds=1.5)

    assert history.records == len(good) + len(bad)
    assert sorted(history.streams) == [f"s-{i:04d}" for i in range(6)]
    assert history.events == len(good)
    assert history.rejected == 3
    series = history.streams["s-0002"]
    assert series.features == ("value",)
    assert series.ts_ms == [T0 + k * 60_000 for k in range(50)]
    window = history.window()
    assert window["first_ts"] == T0 and window["last_ts"] == T0 + 49 * 60_000
    assert sum(history.next_offsets.values()) == len(good) + len(bad)

    # From the recorded offsets onward there is nothing new.
    again = read_topic(s, start_offsets=history.next_offsets, max_seconds=30, idle_seconds=1.0)
    assert again.records == 0 and again.events == 0


def test_record_budget_keeps_the_newest_history(stack: StackInfo, topic_names: Any) -> None:
    s = test_settings(stack, topic_names, topic_partitions=1)
    create_topics(s)
    produce(s.bootstrap_servers, s.events_topic, sensor_events(4, 100, spike_at=None))
    history = read_topic(s, max_records=200, max_seconds=60, idle_seconds=1.5)
    assert history.events == 200
    for series in history.streams.values():
        assert series.ts_ms == [T0 + k * 60_000 for k in range(50, 100)]


def test_a_missing_topic_is_a_clear_error(stack: StackInfo, topic_names: Any) -> None:
    s = test_settings(stack, topic_names)
    with pytest.raises(TrainingDataError, match="does not exist"):
        read_topic(s, max_seconds=1.0)


def series_history(lengths: list[int], seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    streams = {}
    for i, n in enumerate(lengths):
        values = rng.normal(50, 5, size=(n, 2)).round(3)
        streams[f"s{i}"] = StreamSeries(
            ("a", "b"), list(range(n)), [tuple(map(float, row)) for row in values]
        )
    return History(streams, "test")


def test_sequences_match_online_normalisation_and_hold_out_the_tail() -> None:
    history = series_history([130, 97, 40])
    data = build_training_set(history, max_features=4, seq_len=16, held_out_fraction=0.25)

    assert data.streams == 3
    s0 = history.streams["s0"]
    values = np.zeros((1, 130, 4), np.float32)
    values[0, :, :2] = np.asarray(s0.values)
    mask = np.zeros((1, 130, 4), bool)
    mask[0, :, :2] = True
    z = normalise_sequences(values, mask)[0]
    # The newest window of each stream is held out and ends at its newest event.
    assert any(np.allclose(w[-1], z[-1]) for w in data.z_held)
    assert not any(np.allclose(w[-1], z[-1]) for w in data.z_train)
    assert data.z_train.shape[1:] == (17, 4) and data.z_held.shape[1:] == (17, 4)
    assert data.mask_train[:, :, 2:].sum() == 0 and data.mask_train[:, :, :2].all()
    # 130 -> 8 windows (2 held), 97 -> 6 (2 held), 40 -> 2 (1 held)
    assert len(data.z_held) == 2 + 2 + 1
    assert len(data.z_train) == 6 + 4 + 1


def test_too_short_history_is_refused() -> None:
    with pytest.raises(TrainingDataError, match="no stream has 65 events"):
        build_training_set(series_history([30, 40]), max_features=4, seq_len=64)


def test_csv_files_become_streams(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(
        "timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 00:05:00,2\n2026-01-01 00:05:00,3\n"
    )
    (tmp_path / "multi.csv").write_text(
        "ts,stream,temp,vib\n1763700000,p1,70,0.1\n1763700060,p1,71,0.2\n1763700000,p2,60,0.3\n"
    )
    history = read_csv([str(tmp_path)], max_features=4)
    assert sorted(history.streams) == ["a", "p1", "p2"]
    assert history.streams["a"].values == [(1.0,), (2.0,)]  # duplicate timestamp dropped
    assert history.streams["p1"].features == ("temp", "vib")
    assert history.streams["p1"].ts_ms == [1_763_700_000_000, 1_763_700_060_000]
    (tmp_path / "bad.csv").write_text("when,value\nx,1\n")
    with pytest.raises(TrainingDataError, match="no 'timestamp'"):
        read_csv([str(tmp_path / "bad.csv")], max_features=4)
    with pytest.raises(CsvError, match="no such file or folder"):
        read_csv([str(tmp_path / "nope.csv")], max_features=4)
