"""Creating the worker's topics: the changelog must cover every events partition."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.kafka.topics import TopicError, ensure_topics
from pipeline.local.stack import StackInfo
from pipeline.worker.wiring import create_topics
from tests.pipeline.kafka.helpers import test_settings


def test_a_changelog_with_fewer_partitions_than_the_events_is_refused(
    stack: StackInfo, topic_names: Any
) -> None:
    s = test_settings(stack, topic_names, topic_partitions=4)
    ensure_topics(s.bootstrap_servers, {s.changelog_topic: 2})  # made before, by hand
    with pytest.raises(TopicError, match=r"has 2 partitions .* 4: give the changelog as many"):
        create_topics(s)
    create_topics(s.replace(changelog_topic=topic_names("changelog")))  # a fresh one is fine
