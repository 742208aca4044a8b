"""Packaging: model bundles, container images, Kubernetes manifests and the managed clouds' contracts.

Sits above the core like the CLI: it may import the registry, runtimes, serving and api; nothing imports it
but the CLI.
"""
