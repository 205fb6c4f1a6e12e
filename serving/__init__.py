"""Serving: a TF Serving-compatible REST gateway (``python -m serving``).

One module per job: ``api`` (the HTTP API without sockets: ``model``,
``admin`` and ``ops`` handlers, a thin ``dispatcher``, one ``errors``
mapping), ``routing`` (labels, canary/shadow via ``rollout``), ``backends``
(in-process hot-swapping SavedModels or a TF Serving proxy), ``servable`` (one
loaded version), ``codec`` (JSON <-> tensors), ``validation`` (schema's SERVING environment),
``batching``, ``metrics`` (Prometheus), ``openapi``, ``request_log``,
``models_config`` (TF Serving's config files), ``asgi`` (the HTTP adapter run by
uvicorn; ``http_limits`` its limits), ``server`` (the process, ``launch``),
``cli`` and ``client``.
"""
