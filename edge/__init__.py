"""Edge runtimes: the TFLite and TF.js conversion, its runtime checks and the browser extension.

Above the trainer (which writes the edge SavedModels from the Transform
analysis, ``trainer.edge_graph``) and below serving; imports nothing from
``serving``. The files live under a model's ``assets.extra/``, named in
``common.serving_contract``:

* ``edge.convert``: edge SavedModels -> ``model.tflite``, ``tfjs/`` and
  ``edge_signature.json`` (``edge.signature``); CLI to convert a pushed model again.
* ``edge.runtime``: the same rows through SavedModel, TFLite and TF.js
  (``edge/tfjs_predict.mjs`` in Node), for tests and benchmarks.
* ``edge.statement_only``: the edge model specialised to its text input.
* ``edge.browser_extension``: bundles the extension with a pushed model's TF.js model.
"""
