"""Kill -9 workers at random points: the result must equal one uninterrupted run.

Workers run as real `vigil worker` processes against the session's broker and Redis; the
reference run is an in-process worker over the same topic with its own group, Redis
prefix and alerts topic.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from typing import Any

import numpy as np

from pipeline.alerts import Alert
from pipeline.runtime import create_topics, open_store, open_worker
from pipeline.serving_model import build_detector
from pipeline.settings import Settings, load_settings
from pipeline.stack import StackInfo
from tests.pipeline.kafka_helpers import produce, read_all, sensor_events, test_settings
from tests.reliability.harness import worker_env

N_STREAMS, PER_STREAM = 200, 100
STREAMS = [f"s-{i:04d}" for i in range(N_STREAMS)]
LAYOUT = build_detector(load_settings(None)).layout


def _spawn(s: Settings, idle_exit: float = 8.0) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "worker", "--idle-exit", str(idle_exit)],
        env=worker_env(s),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _states(s: Settings) -> tuple[np.ndarray, np.ndarray]:
    return LAYOUT.decode(open_store(s).load(STREAMS))


def _applied(s: Settings) -> int:
    states, known = _states(s)
    return int(states["count"][known].sum())


def _wait_applied(
    s: Settings, at_least: int, proc: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while _applied(s) < at_least:
        assert proc.poll() is None, (proc.stdout.read() if proc.stdout else b"").decode() + str(
            _applied(s)
        )
        assert time.monotonic() < deadline, f"worker did not reach {at_least} applied events"
        time.sleep(0.02)


def _reference(
    stack: StackInfo, topic_names: Any, events_topic: str
) -> tuple[np.ndarray, set[str]]:
    ref = test_settings(stack, topic_names, events_topic=events_topic)
    create_topics(ref)
    worker = open_worker(ref)
    worker.run(max_records=N_STREAMS * PER_STREAM, idle_exit_s=30)
    states, known = _states(ref)
    assert known.all()
    alerts = {
        Alert.from_json(r.value).id for r in read_all(ref.bootstrap_servers, ref.alerts_topic)
    }
    return states, alerts


def _assert_same(states: np.ndarray, reference: np.ndarray) -> None:
    for name in ("partition", "offset", "count", "last_ts", "flags", "cooldown", "model_tag"):
        assert (states[name] == reference[name]).all(), name
    for name in ("hidden", "pred", "norm_mean", "norm_var", "err_mean", "err_var", "err_short"):
        np.testing.assert_allclose(
            states[name], reference[name], rtol=1e-4, atol=1e-4, err_msg=name
        )


def _setup(stack: StackInfo, topic_names: Any) -> Settings:
    s = test_settings(stack, topic_names, max_poll_records=400)
    create_topics(s)
    produce(s.bootstrap_servers, s.events_topic,
            sensor_events(N_STREAMS, PER_STREAM, seed=11, spike_at=80))  # fmt: skip
    return s


def test_kill_9_at_random_points_changes_nothing(stack: StackInfo, topic_names: Any) -> None:
    s = _setup(stack, topic_names)
    total = N_STREAMS * PER_STREAM
    rng = random.Random(20261121)
    for target in sorted(rng.sample(range(total // 10, total * 9 // 10), 3)):
        proc = _spawn(s)
        _wait_applied(s, target, proc, timeout=90)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = _spawn(s)
    assert final.wait(timeout=180) == 0, final.stderr.read().decode() if final.stderr else ""

    states, known = _states(s)
    assert known.all()
    assert int(states["count"].sum()) == total  # nothing lost, nothing applied twice
    ref_states, ref_alerts = _reference(stack, topic_names, s.events_topic)
    _assert_same(states, ref_states)
    alerts = {Alert.from_json(r.value).id for r in read_all(s.bootstrap_servers, s.alerts_topic)}
    assert alerts == ref_alerts
    assert len(ref_alerts) >= N_STREAMS // 2  # the spikes are there to be found


def test_survivor_takes_over_with_hidden_state_intact(stack: StackInfo, topic_names: Any) -> None:
    s = _setup(stack, topic_names)
    total = N_STREAMS * PER_STREAM
    a, b = _spawn(s, idle_exit=12.0), _spawn(s, idle_exit=12.0)
    _wait_applied(s, total // 3, a, timeout=90)
    a.send_signal(signal.SIGKILL)
    a.wait()
    assert b.wait(timeout=180) == 0, b.stderr.read().decode() if b.stderr else ""

    states, known = _states(s)
    assert known.all()
    assert int(states["count"].sum()) == total
    ref_states, ref_alerts = _reference(stack, topic_names, s.events_topic)
    # Same counts, statistics and hidden states as one uninterrupted run: the survivor
    # continued every stream from its saved state (a re-warm or reset would differ).
    _assert_same(states, ref_states)
    alerts = {Alert.from_json(r.value).id for r in read_all(s.bootstrap_servers, s.alerts_topic)}
    assert alerts == ref_alerts
