"""Federated learning on Flower's Deployment Engine: the coordinator's side.

* :mod:`.server_app` — the ServerApp the SuperLink runs per run;
* :mod:`.rounds` — the round loop: eligible gateways, quorum, deadline;
* :mod:`.strategies` — FedAvg, FedProx, trimmed mean, median, Krum, central DP
  (Flower's own strategies and DP wrapper);
* :mod:`.settings` — the run settings (``[tool.flwr.app.config]``);
* :mod:`.control` — the SuperLink's Control API (start, status, node keys);
* :mod:`.fab` — the app bundle (configuration only);
* :mod:`.runs`, :mod:`.service` — what the CLI (:mod:`.cli`) and the API
  (``cloud_coordinator/api/routes/federated.py``) call;
* :mod:`.errors` — the exception tree.

The gateway's side is :mod:`edge_agent.fl`.
"""
