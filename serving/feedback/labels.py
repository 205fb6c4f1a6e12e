"""What a feedback label is: the value of the raw label column, as the training data holds it.

Why the raw form: a labelled span must be read by ExampleGen and turned into
the training label by the pipeline's own Transform (``make_label`` in
``trainer.preprocessing``), exactly as for the training files, and validated
against the same curated schema by the data gate. So feedback carries what the
training data carries in ``label.column``, per label kind:

* ``classes`` (LIAR): a class name from ``label.classes``, e.g. ``"half-true"``
  (also when the model trains on the binary fold: Transform folds it);
* ``column``: the integer class id, ``0 .. num_classes-1``;
* ``ratio_threshold`` (taxi): the raw numerator column, e.g. the trip's
  ``tips`` amount in dollars, not the 0/1 ``big_tipper``. Transform computes
  ``tips > fraction * fare`` with the ``fare`` the gateway logged, so the
  denominator must be a logged feature that is not in
  ``serving.sensitive_features``. A 0/1 label could not be joined the same
  way: the curated schema requires ``tips`` in every training row, and a
  ``big_tipper`` column would need a new schema feature and a second label
  path in Transform.

The allowed values come from the config's label section (classes, class ids)
and from the curated schema's rule for ``label.column`` in its TRAINING
environment (type, int/float range, string domain): a label outside them is a
400 naming the field, the value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Optional, Tuple

from tensorflow.core.example import feature_pb2

from common.config import PipelineConfig
from serving.errors import BadRequest
from serving.validation import FeatureRule, SchemaValidator

TRAINING = "TRAINING"
_DTYPES = {"classes": "string", "column": "int", "ratio_threshold": "float"}


class FeedbackUnavailable(ValueError):
    """Feedback cannot be joined for this config; the message names the key and why."""


@dataclasses.dataclass(frozen=True)
class LabelSpec:
    """The raw label column a feedback label fills, and the values it accepts."""
    column: str
    dtype: str                           # "string" | "int" | "float"
    classes: Tuple[str, ...] = ()        # classes: the accepted names
    class_ids: Tuple[int, ...] = ()      # column: the accepted ids
    rule: Optional[FeatureRule] = None   # the schema's rule for the column, if it has one
    schema: str = ""                     # the rule's schema, e.g. taxi/schema.pbtxt (messages)

    @classmethod
    def from_config(cls, cfg: PipelineConfig, schema_path: Optional[str] = None) -> "LabelSpec":
        """The spec for a dataset config (``schema_path``: default the config's schema;
        messages name only its last two path parts, never the server's directories).

        Raises ``FeedbackUnavailable`` when a joined row could not produce the
        training label (a ratio label whose denominator is not logged).
        """
        label = cfg.label
        if label.kind == "ratio_threshold":
            logged = {f.name for f in cfg.features}
            mode = cfg.serving.sensitive_features.get(label.denominator or "")
            if label.denominator not in logged or mode:
                why = (f"is {'dropped' if mode == 'drop' else 'hashed'} by serving.sensitive_features"
                       if mode else "is not a feature, so the request log does not hold it")
                raise FeedbackUnavailable(
                    f"label.denominator: {label.denominator!r} {why}; feedback for a "
                    f"ratio_threshold label sends {label.column!r} and needs the logged "
                    f"{label.denominator!r} to compute {label.name!r}")
        path = schema_path or cfg.schema_path
        rule = SchemaValidator.from_file(path, TRAINING).rules.get(label.column)
        return cls(column=label.column, dtype=_DTYPES[label.kind],
                   classes=tuple(label.classes) if label.kind == "classes" else (),
                   class_ids=tuple(range(cfg.num_classes)) if label.kind == "column" else (),
                   rule=rule, schema=os.path.basename(os.path.dirname(path)) + "/" +
                   os.path.basename(path))

    def expected(self) -> str:
        """The accepted values, for error messages and the OpenAPI document."""
        if self.classes:
            return f"one of the classes {list(self.classes)} (label.classes)"
        if self.class_ids:
            return f"one of the class ids {list(self.class_ids)}"
        if self.rule is not None:
            return self.rule.expected() + f" ({self.column!r} in {self.schema})"
        return f"a finite number (the raw {self.column!r} column)"

    def parse(self, value: Any, where: str) -> Any:
        """A JSON label, checked and normalised (str, int or float); 400 naming ``where``."""
        def fail(problem: str = "") -> None:
            raise BadRequest(f"{where}: label {value!r}{problem} is not valid for {self.column!r}; "
                             f"expected {self.expected()}")

        if self.dtype == "string":
            if not isinstance(value, str):
                fail(" (not a string)")
            if self.classes and value not in self.classes:
                fail()
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                fail(" (not a number)")
            if not math.isfinite(value):
                fail(" (not finite)")
            if self.dtype == "int":
                if not float(value).is_integer():
                    fail(" (not an integer)")
                value = int(value)
                if self.class_ids and value not in self.class_ids:
                    fail()
            else:
                value = float(value)
        if self.rule is not None:
            self.rule_check(value, where)
        return value

    def parse_text(self, text: str, where: str) -> Any:
        """A label from a CSV cell: typed by the column's dtype, then ``parse``."""
        if self.dtype == "string":
            return self.parse(text, where)
        try:
            number = float(text)
        except ValueError:
            raise BadRequest(f"{where}: label {text!r} is not a number; expected "
                             f"{self.expected()}") from None
        return self.parse(int(number) if self.dtype == "int" and number.is_integer() else number, where)

    def rule_check(self, value: Any, where: str) -> None:
        """The schema's type and domain for the label column (a 400 naming them)."""
        validator = SchemaValidator({self.column: self.rule}, (), self.schema)
        try:
            validator.check_value(self.column, value, where)
        except BadRequest as err:
            raise BadRequest(f"{err.message} ({self.column!r} in {self.schema})") from None

    def feature(self, value: Any) -> feature_pb2.Feature:
        """The label as the training data's tf.Example holds ``column``."""
        feature = feature_pb2.Feature()
        if self.dtype == "string":
            feature.bytes_list.value.append(str(value).encode("utf-8"))
        elif self.dtype == "int":
            feature.int64_list.value.append(int(value))
        else:
            feature.float_list.value.append(float(value))
        return feature
