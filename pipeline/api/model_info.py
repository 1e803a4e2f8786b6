"""Which model versions exist and which one is live, for /models and the dashboard.

`model_versions` is the only place that knows where versions come from. Today: the
model shipped in `detectors` plus the `live_model` meta value in Redis (what the
registry's promote writes). When `pipeline.models.registry` lands, this function becomes a
thin mapping of `ModelRegistry.list()` / `live_id()` onto `ModelVersion`.
"""

from __future__ import annotations

from pipeline.api.deps import ApiContext
from pipeline.api.schemas import ModelsView, ModelVersion
from pipeline.state.redis import RedisStateStore

LIVE_KEY = "live_model"


def model_versions(context: ApiContext) -> ModelsView:
    store = RedisStateStore(context.redis, context.settings.redis_prefix)
    raw = store.get_meta(LIVE_KEY)
    live = raw.decode("utf-8", "replace") if raw else None
    loaded = context.model()
    shipped = ModelVersion(
        version=loaded.version,
        source="shipped",
        live=live is None or live == loaded.version,  # nothing promoted: the shipped one serves
        kind=loaded.config.kind,
        hidden_size=loaded.config.hidden_size,
        sha256=loaded.sha256,
    )
    versions = [shipped]
    if live is not None and live != loaded.version:
        versions.insert(0, ModelVersion(version=live, source="registry", live=True))
    return ModelsView(live=live, serving=loaded.version, versions=versions)
