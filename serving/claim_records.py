"""The claim-neighbour record of a request, made at serving time from its statement.

Why: LIAR's model reads a column (``claim_neighbours``) that the pipeline makes
from other rows' labels before anything reads the data
(``components/claim_record.py``), so the Evaluator scores every row with it.
A REST client sends the statement and its metadata, not that record; scored
without it, the served model would not be the evaluated one. The Pusher copies
the ClaimIndex into each version (``assets.extra/claim_index``, see
``common.serving_contract``), so a version carries the index its model was
evaluated with, and this module makes the record of each request row that lacks
one from the row's statement with the pipeline's own code
(``trainer.claim_index``, ``trainer.sentence_encoder``).

What a request gets:

* a row whose record is absent, null, empty (``""``, ``[]``, ``[""]``): the
  record made from its statement, as the pipeline makes an eval row's (the
  whole index; no fold is skipped); a blank statement gets none (left out, as
  the pipeline leaves it out);
* a row that carries a non-empty record: scored with it as sent (a client
  replaying the pipeline's rows, or one that made the record itself);
* serialized tf.Examples (``{"b64": ...}`` instances): scored as sent.

A version without ``assets.extra/claim_index`` (every model but LIAR's, and the
browser extension's TF.js model, which never has the record) is served as before.
"""
import dataclasses
import os
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence

from common.serving_contract import CLAIM_INDEX_DIR, edge_path
from trainer.claim_index import RecordSpec, read_index, record_tokens, record_value
from trainer.claim_neighbours import NeighbourIndex

_ENCODER_LOCK = threading.Lock()
_ENCODER: Any = None  # one sentence encoder per process, shared by every version


def _encoder() -> Any:
    """The installed all-MiniLM-L6-v2, loaded once (its weights take a second to read)."""
    global _ENCODER
    with _ENCODER_LOCK:
        if _ENCODER is None:
            from trainer.sentence_encoder import SentenceEncoder

            _ENCODER = SentenceEncoder.load()
        return _ENCODER


def index_dir(version_dir: str) -> str:
    """Where a pushed version keeps its claim-neighbour index."""
    return edge_path(version_dir, CLAIM_INDEX_DIR)


def _needs_record(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == [""]


@dataclasses.dataclass(frozen=True)
class ClaimRecords:
    """One version's index and record settings, and the encoder it was built with."""
    index: NeighbourIndex
    spec: RecordSpec
    encoder: Any

    @classmethod
    def for_version(cls, version_dir: str) -> Optional["ClaimRecords"]:
        """The version's record maker; None when the version has no claim index.
        Raises when the index is unreadable or was built with other encoder weights
        (the version must then fail to load rather than serve other records)."""
        directory = index_dir(version_dir)
        if not os.path.isdir(directory):
            return None
        index, spec, encoder_sha256 = read_index(directory)
        encoder = _encoder()
        if encoder_sha256 and encoder_sha256 != encoder.weights_key:
            raise ValueError(f"claim index {directory} was built with sentence-encoder weights "
                             f"{encoder_sha256[:12]}..., but the installed ones are "
                             f"{encoder.weights_key[:12]}...; install the encoder the model was trained with")
        return cls(index, spec, encoder)

    def values(self, statements: Sequence[str]) -> List[Optional[str]]:
        """Each statement's record value; None for a blank statement."""
        if not statements:
            return []
        vectors = self.encoder.encode(statements)
        tokens = record_tokens(self.index, self.spec, vectors, statements)
        return [record_value(t, self.spec.separator) if t else None for t in tokens]

    def complete(self, verb: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """``body`` with the record filled in where a row lacks it (a new body; the
        request's own is not changed)."""
        if verb == "predict" and isinstance(body.get("instances"), list):
            rows = self._complete_rows(body["instances"], {})
            return body if rows is None else {**body, "instances": rows}
        if verb == "predict" and isinstance(body.get("inputs"), dict):
            return self._complete_columns(body)
        if verb in ("classify", "regress") and isinstance(body.get("examples"), list):
            context = body.get("context") if isinstance(body.get("context"), dict) else {}
            if not _needs_record(context.get(self.spec.column)):
                return body
            rows = self._complete_rows(body["examples"], context)
            return body if rows is None else {**body, "examples": rows}
        return body

    def _complete_rows(self, rows: List[Any], context: Mapping[str, Any]) -> Optional[List[Any]]:
        """Rows (dicts; ``context`` gives their shared values) with their records; None
        when no row needs one."""
        column, text = self.spec.column, self.spec.text
        wanted: Dict[int, str] = {}
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                continue
            merged = {**context, **row}
            statement = merged.get(text)
            if _needs_record(merged.get(column)) and isinstance(statement, str) and statement.strip():
                wanted[i] = statement
        if not wanted:
            return None
        made = dict(zip(wanted, self.values(list(wanted.values()))))
        return [dict(row, **{column: made[i]}) if made.get(i) else row for i, row in enumerate(rows)]

    def _complete_columns(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """Columnar ``inputs``: one record per row of the text column ("" for a blank
        statement: the columnar format has no missing values)."""
        inputs, column = body["inputs"], self.spec.column
        statements = inputs.get(self.spec.text)
        single = isinstance(statements, str)
        statements = [statements] if single else statements
        if not isinstance(statements, list) or not all(isinstance(s, str) for s in statements):
            return body
        sent = inputs.get(column)
        sent = [sent] if isinstance(sent, str) else sent
        if sent is None:
            sent = [None] * len(statements)
        if not isinstance(sent, list) or len(sent) != len(statements) or not any(map(_needs_record, sent)):
            return body
        wanted = [i for i, value in enumerate(sent) if _needs_record(value) and statements[i].strip()]
        made = dict(zip(wanted, self.values([statements[i] for i in wanted])))
        values = [(made.get(i) or "") if _needs_record(value) else value for i, value in enumerate(sent)]
        return {**body, "inputs": {**inputs, column: values[0] if single else values}}
