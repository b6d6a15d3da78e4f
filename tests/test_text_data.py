"""kerasdl.data.text: vocabularies, sources (file / pydoc / tfds), the split and the LM pipeline."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import numpy as np
import pytest

from kerasdl.data.text import (
    TEXT_DATASETS,
    UNK,
    TextCorpus,
    Vocabulary,
    build_corpus,
    is_text_dataset,
    load_corpus,
    load_text,
    split_ids,
    split_sizes,
    text_names,
)
from kerasdl.data.text.pipeline import batch_offsets, eval_windows, get_batch, text_info
from kerasdl.data.text.sources import TINY_SHAKESPEARE_FILE, pydoc_text, read_text_file
from kerasdl.errors import KerasdlUsageError, UnknownNameError

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare/input.txt"
needs_shakespeare = pytest.mark.skipif(
    not SHAKESPEARE.is_file(),
    reason=f"Tiny Shakespeare not found at {SHAKESPEARE} (see shared/data/README.md)",
)
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
# nanoGPT's data/shakespeare_char/prepare.py prints this vocabulary (65 characters).
SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and message, message
    return message


# ----------------------------------------------------------------------------------------------
# vocabularies


def test_char_vocabulary_round_trip_and_ids():
    text = TEXT + "naïve café — ok\ttab 😀"
    v = Vocabulary.build(text)
    assert v.level == "char" and v.tokens == sorted(set(text)) and v.size == len(set(text))
    ids = v.encode(text)
    assert ids.dtype == np.int32 and ids.shape == (len(text),)
    assert [v.tokens[i] for i in ids] == list(text)  # id = index in the sorted characters
    assert v.decode(ids) == text and v.decode(list(ids)) == text and v.decode([]) == ""
    assert v.encode("").shape == (0,)
    assert v.unk_id is None


def test_word_vocabulary_round_trip_and_unk():
    text = "the cat sat on the mat.\nthe dog sat  on the log!\n" * 3 + "a zebra appeared."
    v = Vocabulary.build(text, "word")  # min_count 2: "a", " zebra", " appeared" are rare
    assert v.level == "word" and v.tokens[0] == UNK and v.unk_id == 0
    assert v.tokenize("the cat, sat\n\n  x") == ["the", " cat", ",", " sat", "\n", "\n", " ", " x"]
    assert " the" in v.index and "the" in v.index and "." in v.index and "\n" in v.index
    common = "the cat sat on the mat.\nthe dog sat  on the log!\n"
    ids = v.encode(common)
    assert ids.dtype == np.int32 and 0 not in ids
    assert v.decode(ids) == common  # exact: the tokens join back to the text
    rare = v.encode("a zebra")
    assert rare.tolist() == [0, 0] and v.decode(rare) == UNK + UNK
    counts = Vocabulary.build(text, "word", min_count=1)
    assert " zebra" in counts.index and counts.decode(counts.encode(text)) == text
    # ordered by descending count after <unk>
    assert v.tokens[1] == "\n"  # ties (6 each) in code-point order


def test_vocabulary_json_round_trip(tmp_path):
    for v in (Vocabulary.build(TEXT), Vocabulary.build(TEXT * 2, "word")):
        d = json.loads(v.to_json())
        assert d["level"] == v.level and d["tokens"] == v.tokens
        again = Vocabulary.from_json(v.to_json())
        assert again == v and again.encode(TEXT).tolist() == v.encode(TEXT).tolist()
        path = v.save(tmp_path / f"vocab_{v.level}.json")
        assert Vocabulary.load(path) == v
    for bad in ("not json", "[]", '{"level": "char", "tokens": ["a", "a"]}',
                '{"level": "char", "tokens": ["ab"]}', '{"level": "word", "tokens": ["a"]}',
                '{"level": "byte", "tokens": ["a"]}'):
        with pytest.raises(KerasdlUsageError) as exc:
            Vocabulary.from_json(bad)
        one_line(exc)
    with pytest.raises(KerasdlUsageError) as exc:
        Vocabulary.load(tmp_path / "missing.json")
    assert "no such file" in one_line(exc)


def test_out_of_vocabulary_prompt_names_the_characters():
    v = Vocabulary.build(TEXT)
    v.check_text("Speak, hear me.")  # all known
    with pytest.raises(KerasdlUsageError) as exc:
        v.check_text("ROMEO: é\tZ")
    message = one_line(exc)
    for ch in ("'R'", "'O'", "'M'", "'E'", "'é' (U+00E9)", "'\\t' (U+0009)", "'Z'"):
        assert ch in message, message
    assert "prompt" in message and "7 characters" in message
    with pytest.raises(KerasdlUsageError) as exc:
        v.encode("Zebra")  # character level: encoding refuses too, naming the character
    assert "'Z'" in one_line(exc)
    w = Vocabulary.build(TEXT * 2, "word")
    with pytest.raises(KerasdlUsageError) as exc:
        w.check_text("Speak, Romeo")
    assert "' Romeo'" in one_line(exc) and "word" in str(exc.value)
    with pytest.raises(KerasdlUsageError) as exc:
        v.decode([0, v.size])
    assert "outside the vocabulary" in one_line(exc)


def test_vocabulary_options_are_checked():
    with pytest.raises(UnknownNameError):
        Vocabulary.build(TEXT, "byte")
    with pytest.raises(KerasdlUsageError) as exc:
        Vocabulary.build(TEXT, "char", min_count=3)
    assert "word-level" in one_line(exc)
    with pytest.raises(KerasdlUsageError) as exc:
        Vocabulary.build("a b c", "word", min_count=5)
    one_line(exc)


# ----------------------------------------------------------------------------------------------
# split


def test_split_is_contiguous_and_follows_nanogpt():
    ids = np.arange(1000, dtype=np.int32)
    parts = split_ids(ids)
    assert [len(parts[s]) for s in ("train", "validation", "test")] == [900, 100, 0]
    assert np.array_equal(np.concatenate([parts["train"], parts["validation"]]), ids)
    parts = split_ids(ids, 0.05, 0.05)  # 90/5/5
    assert [len(parts[s]) for s in ("train", "validation", "test")] == [900, 50, 50]
    assert np.array_equal(np.concatenate([parts[s] for s in ("train", "validation", "test")]), ids)
    assert split_sizes(1115394) == {"train": 1003854, "validation": 111540, "test": 0}
    for v, t in ((0.0, 0.1), (0.6, 0.4), (1.2, 0.0), (-0.1, 0.0), ("a", 0.0)):
        with pytest.raises(KerasdlUsageError) as exc:
            split_sizes(100, v, t)
        one_line(exc)


# ----------------------------------------------------------------------------------------------
# sources


@needs_shakespeare
def test_tiny_shakespeare_matches_nanogpt():
    corpus = load_corpus(str(SHAKESPEARE))
    assert isinstance(corpus, TextCorpus) and corpus.source == "file"
    d = corpus.description
    assert d["chars"] == 1115394 and d["sha256"] == SHAKESPEARE_SHA256
    assert corpus.vocab_size == 65 and "".join(corpus.vocab.tokens) == SHAKESPEARE_CHARS
    assert corpus.split_sizes() == {"train": 1003854, "validation": 111540, "test": 0}
    assert corpus.splits["train"].dtype == np.int32
    text = SHAKESPEARE.read_text(encoding="utf-8")
    assert corpus.vocab.decode(corpus.splits["validation"]) == text[1003854:]
    assert d["level"] == "char" and d["split_tokens"]["validation"] == 111540
    json.dumps(d)  # dataset.json material
    info = text_info(corpus, 64)
    assert info.input_shape == (64,) and info.num_classes == 65 and info.raw_dtype == "int32"
    assert info.splits == {"train": 1003854, "validation": 111540, "test": 0}
    assert json.loads(json.dumps(info.to_dict()))["num_classes"] == 65
    assert is_text_dataset(str(SHAKESPEARE))


def test_pydoc_corpus_hash_and_description():
    from pydoc_data.topics import topics

    first, second = pydoc_text(), load_text("pydoc")
    assert first.text == second.text and first.description == second.description
    d = first.description
    assert d["sha256"] == hashlib.sha256(first.text.encode("utf-8")).hexdigest()
    assert d["python_version"] == platform.python_version()
    assert d["topics"] == len(topics) and d["chars"] == len(first.text) > 100_000
    assert d["source"] == "cpython" and first.source == "cpython"
    assert first.text.startswith(topics[sorted(topics)[0]])
    corpus = load_corpus("pydoc", validation_fraction=0.05, test_fraction=0.05)
    assert corpus.description["sha256"] == d["sha256"] and corpus.description["python_version"]
    sizes = corpus.split_sizes()
    assert sizes["test"] > 0 and sum(sizes.values()) == d["chars"]
    assert "pydoc" in TEXT_DATASETS and "pydoc" in text_names() and is_text_dataset("pydoc")


def test_bad_files_give_one_line_errors(tmp_path):
    cases = {
        "empty.txt": (b"", "empty"),
        "blank.txt": (b"  \n\n\t\n", "only whitespace"),
        "nul.txt": (b"hello\x00world", "NUL byte at byte offset 5"),
        "latin1.txt": ("caf\u00e9 ok".encode("latin-1"), "byte offset 3"),
        "utf16.txt": ("hello".encode("utf-16"), "UTF-16"),
    }
    for name, (data, phrase) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(KerasdlUsageError) as exc:
            load_corpus(str(tmp_path / name))
        assert phrase in one_line(exc), (name, str(exc.value))
    with pytest.raises(KerasdlUsageError) as exc:
        load_corpus(str(tmp_path / "missing.txt"))
    assert "no such file" in one_line(exc)
    with pytest.raises(KerasdlUsageError) as exc:
        load_text(str(tmp_path))
    assert "folder" in one_line(exc)
    with pytest.raises(UnknownNameError) as exc:
        load_text("pydocs")
    assert "pydoc" in one_line(exc)


def test_file_details_bom_crlf_and_block_size(tmp_path):
    path = tmp_path / "win.txt"
    path.write_bytes(b"\xef\xbb\xbfab\r\ncd\re\n")
    src = read_text_file(path)
    assert src.text == "ab\ncd\ne\n" and "byte-order mark" in src.description["encoding"]
    assert "CRLF" in src.description["newlines"]
    assert src.description["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    short = tmp_path / "short.txt"
    short.write_text("abcdefghijklmnopqrstuvwxyz" * 4, encoding="utf-8")  # 104 chars: 93 / 11
    corpus = load_corpus(str(short), block_size=10)
    assert corpus.split_sizes() == {"train": 93, "validation": 11, "test": 0}
    with pytest.raises(KerasdlUsageError) as exc:
        load_corpus(str(short), block_size=11)
    message = one_line(exc)
    assert "block size 11" in message and "validation split has 11 tokens" in message
    with pytest.raises(KerasdlUsageError) as exc:
        get_batch(corpus.splits["train"], 93, 2, 0, 0)
    assert "block size 93" in one_line(exc)
    with pytest.raises(KerasdlUsageError) as exc:
        corpus.check_block_size(0)
    one_line(exc)


def test_tfds_offline_error_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASDL_OFFLINE", "1")
    for name in ("tiny_shakespeare", "tfds:tiny_shakespeare"):
        assert is_text_dataset(name)
        with pytest.raises(KerasdlUsageError) as exc:
            load_text(name, data_dir=str(tmp_path))
        message = one_line(exc)
        assert TINY_SHAKESPEARE_FILE in message and "KERASDL_OFFLINE" in message


def test_word_level_corpus():
    corpus = build_corpus("t", "file", TEXT * 5, {"chars": len(TEXT) * 5}, level="word")
    d = corpus.description
    assert d["level"] == "word" and d["unk_tokens"] == 0 and d["min_count"] == 2
    ids = np.concatenate([corpus.splits["train"], corpus.splits["validation"]])
    assert corpus.vocab.decode(ids) == TEXT * 5
    with pytest.raises(KerasdlUsageError):
        build_corpus("t", "file", TEXT, level="char", vocab=corpus.vocab)


# ----------------------------------------------------------------------------------------------
# pipeline


def test_windows_are_shifted_by_one():
    ids = np.arange(500, dtype=np.int32) % 97
    x, y = get_batch(ids, 16, 8, seed=3, step=0)
    assert x.shape == y.shape == (8, 16) and x.dtype == y.dtype == np.int32
    offsets = batch_offsets(len(ids), 16, 8, 3, 0)
    assert offsets.min() >= 0 and offsets.max() < len(ids) - 16
    for row, i in enumerate(offsets):
        assert np.array_equal(x[row], ids[i:i + 16]) and np.array_equal(y[row], ids[i + 1:i + 17])
    vx, vy = eval_windows(ids, 16)
    assert vx.shape == ((500 - 1) // 16, 16)
    assert np.array_equal(vx.reshape(-1), ids[:vx.size]) and np.array_equal(vy.reshape(-1), ids[1:vx.size + 1])
    sx, sy = eval_windows(ids, 16, max_windows=5)
    assert sx.shape == (5, 16) and np.array_equal(sx[0], vx[0]) and np.array_equal(sx[-1], vx[-1])
    assert np.array_equal(sx[:, 1:], sy[:, :-1])


def test_training_batches_repeat_with_a_seed():
    ids = np.arange(10_000, dtype=np.int32)
    a = [get_batch(ids, 32, 4, seed=7, step=s)[0] for s in range(3)]
    b = [get_batch(ids, 32, 4, seed=7, step=s)[0] for s in range(3)]
    c = get_batch(ids, 32, 4, seed=8, step=0)[0]
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[0], c)


def test_tf_datasets_match_numpy_batches():
    pytest.importorskip("tensorflow")
    from kerasdl.data.text.pipeline import lm_datasets, train_dataset

    corpus = build_corpus("t", "file", TEXT * 40, level="char")
    data = lm_datasets(corpus, block_size=16, batch_size=4, seed=5, splits=("train", "validation"))
    train = [(x.numpy(), y.numpy()) for x, y in data["train"].take(3)]
    again = [(x.numpy(), y.numpy()) for x, y in train_dataset(
        corpus.splits["train"], block_size=16, batch_size=4, seed=5).take(3)]
    for step, ((x, y), (x2, y2)) in enumerate(zip(train, again)):
        nx, ny = get_batch(corpus.splits["train"], 16, 4, 5, step)
        assert x.dtype == np.int32 and x.shape == (4, 16)
        assert np.array_equal(x, nx) and np.array_equal(y, ny)
        assert np.array_equal(x, x2) and np.array_equal(y, y2)
    resumed = next(iter(train_dataset(corpus.splits["train"], block_size=16, batch_size=4, seed=5,
                                      start_step=2)))
    assert np.array_equal(resumed[0].numpy(), train[2][0])
    vx = np.concatenate([x.numpy() for x, _ in data["validation"]])
    assert np.array_equal(vx, eval_windows(corpus.splits["validation"], 16)[0])
    with pytest.raises(KerasdlUsageError) as exc:
        lm_datasets(corpus, block_size=len(corpus.splits["validation"]), batch_size=2)
    one_line(exc)
