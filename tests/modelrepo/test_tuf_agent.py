"""The agent runs the model manager's active model and swaps it after an update."""

from __future__ import annotations

from modelrepo_env import BUCKET, RepoWorld

from edge_agent.config import config_from_mapping
from edge_agent.modelmgr import UpdateResult
from edge_agent.service.runtime import open_runtime
from models.registry import shipped_model

SHIPPED = shipped_model().version


def _next(version: str) -> str:
    major, minor, _ = (int(p) for p in version.split("."))
    return f"{major}.{minor + 1}.0"


def test_tuf_agent_runtime_uses_and_swaps_the_active_model(world: RepoWorld) -> None:
    version = _next(SHIPPED)
    world.publish_version(version)
    config = config_from_mapping(
        {
            "gateway": {"id": "gw-agent", "workdir": str(world.root / "agent")},
            # The gateway's own store holds the models bucket (store://models).
            "store": {"kind": "local", "root": str(world.store.root)},
            "models": {
                "enabled": True,
                "repository_url": f"store://{BUCKET}",
                "trusted_root": str(world.trusted_root),
            },
        }
    )

    runtime = open_runtime(config)
    try:
        assert runtime.models is not None
        assert runtime.detector is not None
        assert runtime.detector.model_block["version"] == SHIPPED
        assert runtime.models.check().result is UpdateResult.INSTALLED
        assert runtime.detector.model_block["version"] == version
    finally:
        runtime.close()

    # After a restart the agent starts on the installed model.
    restarted = open_runtime(config)
    try:
        assert restarted.detector is not None
        assert restarted.detector.model_block["version"] == version
    finally:
        restarted.close()
