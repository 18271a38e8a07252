"""Shared fixtures: the local control plane for tests/live (started only when a test asks)."""

pytest_plugins = ["cluster.fixtures", "cluster.services", "cluster.libraries"]
