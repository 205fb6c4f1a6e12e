"""The gateway's HTTP API without sockets, split by job (``serving.server`` adapts it to HTTP).

* ``dispatcher``: ``Gateway``, URL -> handler, request ids, request metrics
* ``model``: TF Serving's model API (status, metadata, predict/classify/regress,
  stable/canary/shadow routing, request log)
* ``admin``: rollout status and actions behind a bearer token
* ``feedback``: labels for logged predictions (``POST /v1/models/<m>/feedback``)
* ``ops``: /healthz, /metrics, /openapi.json
* ``errors``: the one mapping from our exceptions to TF Serving's error answers
* ``request``: ``Request``/``Response`` and the URL and body checks all handlers share
* ``deps``: what the handlers depend on (backend, router, request log, limits)
"""
