"""The ground floor: what every other package reads and nothing of ours is imported by.

The dataset config (schema, loader, per-section checks), repo paths, the
Kubernetes name/quantity grammar, the serving contract (signature names,
output key, ``assets.extra/`` layout) and the per-executor config slices.
Every module here imports only the standard library and third-party packages.
"""
