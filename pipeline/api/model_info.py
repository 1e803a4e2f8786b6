"""Which model versions exist and which one is live, for /models: read from the registry.

The registry (`pipeline.models.registry`) holds the versions (in `model_dir`, shared
with the trainer and the workers) and the live pointer (in Redis). The shipped generic
model is a version too, live when nothing is promoted. A live version whose folder
this API cannot see is still listed, with what the pointer alone tells.
"""

from __future__ import annotations

from pipeline.api.deps import ApiContext
from pipeline.api.schemas import ModelsView, ModelVersion


def model_versions(context: ApiContext) -> ModelsView:
    registry = context.registry()
    live = registry.live_id()
    shipped = registry.shipped()
    versions = [
        ModelVersion(
            version=v.id,
            source="registry",
            live=v.id == live,
            kind=v.config.get("kind"),
            hidden_size=v.config.get("hidden_size"),
            sha256=v.sha256,
        )
        for v in reversed(registry.versions())  # newest first
    ]
    if live is not None and all(v.version != live for v in versions):
        versions.insert(0, ModelVersion(version=live, source="registry", live=True))
    versions.append(
        ModelVersion(
            version=shipped.version,
            source="shipped",
            live=live is None,  # nothing promoted: the shipped model serves
            kind=shipped.config.kind,
            hidden_size=shipped.config.hidden_size,
            sha256=shipped.sha256,
        )
    )
    serving = context.model().version
    return ModelsView(live=live, serving=serving, versions=versions)
