"""Cloud coordinator: catalog, results API and authentication of the cloud side.

Folders by concern:

* :mod:`cloud_coordinator.catalog` — the index of every raw, analytics and
  crash object (SQLite embedded default, PostgreSQL in production);
* :mod:`cloud_coordinator.auth` — bearer tokens (JWT) and roles;
* :mod:`cloud_coordinator.api` — the FastAPI results API under ``/api/v1``;
* :mod:`cloud_coordinator.config` and :mod:`cloud_coordinator.cli` — the
  configuration file and the ``cloud-coordinator`` command.
"""
