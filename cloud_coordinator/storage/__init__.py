"""Object storage operations of the cloud: re-wrapping data keys after rotation.

The stores themselves live in :mod:`edge_agent.upload` (one interface for the
gateway and the cloud); :mod:`.cli` adds ``cloud-coordinator store-rewrap``.
"""
