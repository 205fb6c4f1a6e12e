"""The NumPy all-MiniLM-L6-v2: WordPiece tokenizer, safetensors reader, and the
encoder's vectors against reference values from sentence-transformers."""
import json
import struct

import numpy as np
import pytest

from trainer.sentence_encoder import SentenceEncoder, WordPieceTokenizer, read_safetensors

TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "hello", ",", "!", "cafe"]


def test_wordpiece_splits_longest_match_first_and_lowercases():
    tokenizer = WordPieceTokenizer(TINY_VOCAB)
    ids = tokenizer.encode("Unaffable, HELLO!", max_length=32)
    assert [TINY_VOCAB[i] for i in ids] == ["[CLS]", "un", "##aff", "##able", ",", "hello", "!", "[SEP]"]


def test_wordpiece_strips_accents_and_marks_unknown_words():
    tokenizer = WordPieceTokenizer(TINY_VOCAB)
    ids = tokenizer.encode("Café unknown", max_length=32)
    assert [TINY_VOCAB[i] for i in ids] == ["[CLS]", "cafe", "[UNK]", "[SEP]"]


def test_wordpiece_truncates_to_max_length_keeping_the_separators():
    tokenizer = WordPieceTokenizer(TINY_VOCAB)
    ids = tokenizer.encode("hello hello hello hello", max_length=4)
    assert [TINY_VOCAB[i] for i in ids] == ["[CLS]", "hello", "hello", "[SEP]"]


def test_read_safetensors_round_trip(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([7, 8], np.int64)
    header = {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]},
              "__metadata__": {"format": "pt"}}
    raw = json.dumps(header).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + a.tobytes() + b.tobytes())
    tensors = read_safetensors(str(path))
    assert set(tensors) == {"a", "b"}
    np.testing.assert_array_equal(tensors["a"], a)
    np.testing.assert_array_equal(tensors["b"], b)


def test_read_safetensors_names_an_unsupported_dtype(tmp_path):
    raw = json.dumps({"x": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0\0")
    with pytest.raises(ValueError, match="'x' has dtype BF16"):
        read_safetensors(str(path))


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder.load()


def test_tokenizer_matches_the_reference_tokenizer(encoder):
    # sentence-transformers' BertTokenizer on the same text (accents, dash, sub-words)
    ids = encoder.tokenizer.encode("Crème brûlée — naïve café! Unaffable", max_length=64)
    vocab = {i: t for t, i in encoder.tokenizer.ids.items()}
    assert [vocab[i] for i in ids[1:-1]] == ["cr", "##eme", "br", "##ule", "##e", "\u2014", "naive", "cafe",
                                             "!", "una", "##ffa", "##ble"]


def test_encoder_matches_sentence_transformers(encoder):
    # reference: sentence-transformers 6.2.0 on torch 2.13.0 (CPU), normalize_embeddings=True
    reference = [[0.08594982, -0.08422292, -0.04192509, 0.02587141],
                 [0.01920368, -0.04170932, -0.00904230, 0.00038909]]
    vectors = encoder.encode(["Says the economy grew by 3 percent last year.", "Crème brûlée — naïve café!"])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(vectors[:, :4], reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_encoder_puts_paraphrases_closer_than_unrelated_text(encoder):
    a, b, c = encoder.encode(["The unemployment rate fell last year.",
                              "Joblessness went down over the past year.",
                              "My cat sleeps on the sofa all afternoon."])
    assert a @ b > 0.6 > 0.2 > a @ c


def test_a_vector_does_not_depend_on_its_batch(encoder):
    texts = ["Short claim.", "A much longer claim about taxes, spending and the deficit in 2010."]
    together = encoder.encode(texts, batch_size=2)
    alone = np.concatenate([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_cache_gives_the_encoder_vectors_and_encodes_each_text_once(encoder, tmp_path, monkeypatch):
    from trainer.sentence_encoder import cached_encode

    monkeypatch.setenv("SENTENCE_VECTOR_CACHE", str(tmp_path / "vectors.sqlite"))
    calls = []
    real = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts: calls.append(list(texts)) or real(texts))
    texts = ["A claim.", "Another claim.", "A claim."]
    first = cached_encode(encoder, texts)
    again = cached_encode(encoder, texts + ["A third claim."])
    assert calls == [["A claim.", "Another claim."], ["A third claim."]]
    np.testing.assert_array_equal(again[:3], first)
    np.testing.assert_allclose(first, real(texts), atol=1e-6)
    # other weights never read these vectors
    monkeypatch.setattr(encoder, "weights_key", "other")
    cached_encode(encoder, texts[:1])
    assert calls[-1] == ["A claim."]
