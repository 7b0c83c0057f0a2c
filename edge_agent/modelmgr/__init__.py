"""Model manager of the gateway: receive, verify, shadow-test, swap models."""
