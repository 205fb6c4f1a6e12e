"""Feature kinds: one module per config ``kind``, the shared record and helpers, the registry.

``base`` (the ``FeatureKind`` record and its protocol), ``registry`` (kind name
-> ``FeatureKind``), one module per kind, and the shared ``strings``,
``vocabulary`` and ``token_bag`` helpers.
"""
