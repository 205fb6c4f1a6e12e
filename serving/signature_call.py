"""One SavedModel signature called with numpy arrays, without TF's per-call Python overhead.

Why: for the taxi model's 15 inputs, TF's public path costs more than all of
the gateway's own work (measured, TF 2.16, per call):

* ``ConcreteFunction.__call__(**tensors)`` binds the keyword arguments to the
  signature's ``FunctionType`` and casts every tensor to its ``TensorSpec``,
  then flattens them in the signature's order: ~0.45 ms;
* a loaded SavedModel's function (``saved_model.load._WrapperFunction``)
  checks every one of its 56 captured inputs for a distributed variable to
  swap for its handle: ~0.2 ms, for a model that has none;
* ``tf.constant(array, dtype=...)`` takes ~21 us a tensor, an ``EagerTensor``
  made on the host CPU device by name ~3 us (~10 us with the empty default
  device name, which TF resolves to that same device on every call).

The gateway's arrays already have each input's dtype and a compatible shape
(``codec.to_array`` makes them so), so the binding finds nothing to do: this
module binds once per signature, with TF's own code, to learn the flat order,
then passes the tensors in that order to the flat call that the public path
ends in (same graph, same tensors, same outputs).

What is TF-internal here (TF 2.16, which TFX 1.16 pins) is confined to this
module: ``ConcreteFunction._call_flat``, ``_captured_inputs``,
``function_type_utils``, ``_WrapperFunction`` and ``EagerTensor``. Where any
of it is missing or does not behave as expected, or an array does not fit its
spec (a dtype or shape the signature would not take), the call goes through
the public ``function(**tensors)``, which does what TF does with it.
"""
import logging
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
from tensorflow.python.distribute import distribute_utils
from tensorflow.python.eager import context
from tensorflow.python.framework import ops

from serving.codec import InputSpec

logger = logging.getLogger(__name__)

# (input name, numpy dtype the array must have (None: strings, an object array), spec, TF dtype enum)
_FlatInput = Tuple[str, Any, InputSpec, int]
_CPU = "/device:CPU:0"


class SignatureCall:
    """Calls one signature's concrete function with a dict of numpy arrays.

    ``flat`` tells whether the flat call is available for this signature
    (the tests check that both paths answer alike).
    """

    def __init__(self, function: Any, specs: Mapping[str, InputSpec]) -> None:
        self._function = function
        self._specs = dict(specs)
        self._flat_inputs = _flat_order(function, self._specs)
        self._call_flat = _flat_caller(function) if self._flat_inputs is not None else None

    @property
    def flat(self) -> bool:
        return self._flat_inputs is not None

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, tf.Tensor]:
        """The signature's output tensors by name (TF's errors pass through)."""
        flat = self._flat_inputs
        if flat is not None and all(_fits(inputs[name], dtype, spec) for name, dtype, spec, _ in flat):
            ctx = context.context()
            # Where tf.constant puts them: the current device scope's, else the host CPU.
            device = ctx.device_name or ctx.host_address_space() + _CPU
            # An EagerTensor of a numeric array may share its memory: the arrays
            # are made for this call (one request, or one merged batch) and never
            # written to afterwards.
            tensors = [ops.EagerTensor(inputs[name], device, enum) for name, _, _, enum in flat]
            return self._call_flat(tensors, self._function.captured_inputs)
        return self._function(**{name: tf.constant(inputs[name], dtype=spec.dtype)
                                 for name, spec in self._specs.items()})


def _fits(array: np.ndarray, dtype: Any, spec: InputSpec) -> bool:
    """The array is of the spec's dtype (strings: an object array) and shape."""
    return (array.dtype == (object if dtype is None else dtype)) and spec.fits(array.shape)


def _flat_order(function: Any, specs: Mapping[str, InputSpec]) -> Optional[List[_FlatInput]]:
    """The inputs in the order the function's flat call takes them, found once by
    binding one marker tensor per input with TF's own code; None (use the public
    call) when that cannot be done or does not map each input to one flat place."""
    try:
        from tensorflow.python.eager.polymorphic_function import function_type_utils

        context.context().ensure_initialized()
        if not callable(getattr(function, "_call_flat", None)) or function.function_type is None:
            return None
        if not specs or not all(spec.rank_known for spec in specs.values()):
            return None
        markers = {name: tf.zeros([0 if d is None else d for d in spec.shape], dtype=spec.dtype)
                   for name, spec in specs.items()}
        bound = function_type_utils.canonicalize_function_inputs((), markers, function.function_type)
        flat = function.function_type.unpack_inputs(bound)
    except Exception as err:  # pylint: disable=broad-except
        logger.info("Signature %s takes the public call (no flat call: %s)",
                    getattr(function, "name", "?"), err)
        return None
    names = {id(tensor): name for name, tensor in markers.items()}
    order = [names.get(id(tensor)) for tensor in flat]
    if len(order) != len(specs) or set(order) != set(specs):
        return None
    return [(name, specs[name].numpy_dtype, specs[name], specs[name].dtype.as_datatype_enum)
            for name in order]


def _flat_caller(function: Any) -> Callable[[List[Any], List[Any]], Any]:
    """The function's ``_call_flat``; for a loaded SavedModel's ``_WrapperFunction``
    whose captured inputs are fixed and hold no distributed variable, its base
    class's: the wrapper's only work is swapping such variables for their
    handles (a no-op then), and its per-call checks cost ~0.2 ms."""
    try:
        from tensorflow.python.saved_model.load import _WrapperFunction
    except ImportError:
        return function._call_flat  # pylint: disable=protected-access
    captured = getattr(function, "_captured_inputs", None)
    if (type(function) is not _WrapperFunction or captured is None
            or any(callable(c) for c in captured)
            or any(distribute_utils.is_distributed_variable(c) for c in function.captured_inputs)):
        return function._call_flat  # pylint: disable=protected-access
    return super(_WrapperFunction, function)._call_flat  # pylint: disable=protected-access
