"""Where a text corpus comes from: a user's UTF-8 file, CPython's ``pydoc`` topics, tfds's Tiny
Shakespeare. Each source returns a :class:`TextSource`: the text and a description dict for the
run's ``dataset.json``.

- **A text file** (:func:`read_text_file`): any UTF-8 file (a leading byte-order mark is dropped;
  ``\\r\\n`` and ``\\r`` newlines become ``\\n``, as Python's text mode and so nanoGPT's
  ``prepare.py`` read it). Refused with one line: a missing file, a folder, an empty (or
  whitespace-only) file, a binary file (a NUL byte: its offset is named; a UTF-16 byte-order
  mark says so) and a file that is not UTF-8 (the offset of the first bad byte). A file too
  short for the block size is refused where the block size is known
  (:meth:`~kerasdl.data.text.corpus.TextCorpus.check_block_size`).
- **pydoc** (:func:`pydoc_text`), the offline default: the English reference text that ships
  inside CPython's standard library as ``pydoc_data.topics.topics`` (what ``help("if")`` prints:
  the Python Language Reference topics; CPython 3.11.7: 79 topics, 465,126 characters, 103
  distinct). Every CPython install has it, so a fresh machine trains a language model with no
  download. The topics are joined in sorted key order, separated by :data:`PYDOC_SEPARATOR`;
  the text differs between Python versions, so the description records the Python version, the
  topic count and the sha256 of the joined text (UTF-8).
- **Tiny Shakespeare from tfds** (:func:`tiny_shakespeare`; ``tiny_shakespeare`` or
  ``tfds:tiny_shakespeare``): Karpathy's char-rnn corpus as the tfds catalog distributes it, its
  train, validation and test texts joined back in order (together exactly ``input.txt``), then
  split by kerasdl's rule like any other text. Downloaded only where allowed (not under
  ``KERASDL_OFFLINE=1``, the rule of :mod:`kerasdl.data.loading`) and reachable; otherwise a
  one-line error names the file alternative.

Nothing here imports TensorFlow, except the tfds source (lazily, when it is asked for).
"""

from __future__ import annotations

import codecs
import hashlib
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from kerasdl.data.info import default_data_dir, download_allowed
from kerasdl.errors import KerasdlUsageError

__all__ = [
    "PYDOC_SEPARATOR",
    "TINY_SHAKESPEARE_FILE",
    "TextSource",
    "pydoc_text",
    "read_text_file",
    "tiny_shakespeare",
]

PYDOC_SEPARATOR = "\n\n"
TINY_SHAKESPEARE_TFDS = "tiny_shakespeare"
# Where the project keeps a copy of Tiny Shakespeare (its README); named by the offline error.
TINY_SHAKESPEARE_FILE = "../shared/data/tinyshakespeare/input.txt"
TFDS_SPLITS = ("train", "validation", "test")  # tfds's three contiguous pieces of input.txt


@dataclass
class TextSource:
    """A corpus as read: its name, where it comes from, the text and its description."""

    name: str
    source: str  # "file" | "cpython" | "tfds"
    text: str
    description: dict = field(default_factory=dict)


def sha256_text(text: str) -> str:
    """The sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# ---------------------------------------------------------------------------------- files


def read_text_file(path, *, display_name: str | None = None) -> TextSource:
    """Read the UTF-8 text file ``path`` (module docstring: the rules and the refusals)."""
    path = Path(path).expanduser()
    label = str(display_name if display_name is not None else path)
    if path.is_dir():
        raise KerasdlUsageError(f"{label} is a folder, not a text file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KerasdlUsageError(f"no such file: {label}") from None
    except OSError as exc:
        raise KerasdlUsageError(f"cannot read {label}: {exc.strerror or type(exc).__name__}") from None
    if not data:
        raise KerasdlUsageError(f"{label} is empty (0 bytes); a language model needs text")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not data.startswith(codecs.BOM_UTF32_LE):
        raise KerasdlUsageError(
            f"{label} looks like UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        raise KerasdlUsageError(
            f"{label} is a binary file (NUL byte at byte offset {nul}), not UTF-8 text"
        )
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + bom
        raise KerasdlUsageError(
            f"{label} is not UTF-8 text (byte 0x{data[offset]:02x} at byte offset {offset}); "
            "convert it to UTF-8"
        ) from None
    crlf = text.count("\r\n")
    lone_cr = text.count("\r") - crlf
    if crlf or lone_cr:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise KerasdlUsageError(f"{label} holds only whitespace ({len(text)} characters); a language model needs text")
    description = {
        "kind": "text",
        "source": "file",
        "path": str(path.resolve()),
        "file_name": path.name,
        "bytes": len(data),
        "chars": len(text),
        "sha256": hashlib.sha256(data).hexdigest(),  # of the file's bytes, as `sha256sum` prints it
        "encoding": "utf-8" + (" (byte-order mark dropped)" if bom else ""),
    }
    if crlf or lone_cr:
        description["newlines"] = f"{crlf} CRLF and {lone_cr} CR line ends read as LF"
    return TextSource(name=label, source="file", text=text, description=description)


# ---------------------------------------------------------------------------------- pydoc


def pydoc_text() -> TextSource:
    """CPython's ``pydoc_data.topics`` as one text (module docstring)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions package the standard library's docs apart
        raise KerasdlUsageError(
            "the offline corpus 'pydoc' needs CPython's pydoc_data module, which this Python lacks "
            "(install the full standard library, e.g. Debian's libpython3-stdlib); or give a text file"
        ) from None
    keys = sorted(topics)
    text = PYDOC_SEPARATOR.join(topics[k] for k in keys)
    description = {
        "kind": "text",
        "source": "cpython",
        "corpus": "pydoc_data.topics.topics (the Python reference text behind help())",
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "topics": len(keys),
        "join": f"topics in sorted key order, separated by {PYDOC_SEPARATOR!r}",
        "chars": len(text),
        "sha256": sha256_text(text),  # of the joined text, UTF-8
    }
    return TextSource(name="pydoc", source="cpython", text=text, description=description)


# ---------------------------------------------------------------------------------- tfds


_download_allowed = download_allowed


def _data_dir(data_dir: str | None) -> str:
    """The given folder, else kerasdl's default data folder."""
    return os.path.abspath(os.path.expanduser(data_dir)) if data_dir else default_data_dir()


def _unavailable(name: str, data_dir: str, reason: str) -> KerasdlUsageError:
    return KerasdlUsageError(
        f"tfds dataset {name!r} is not prepared under {data_dir} and could not be downloaded "
        f"({reason}); give the text file instead, e.g. --dataset {TINY_SHAKESPEARE_FILE} "
        "(or train on the offline corpus 'pydoc')"
    )


def tiny_shakespeare(name: str = TINY_SHAKESPEARE_TFDS, *, data_dir: str | None = None,
                     download: bool | None = None) -> TextSource:
    """Tiny Shakespeare from the tfds catalog (prepared under ``data_dir``, downloading it first
    where allowed and reachable); its three tfds splits joined back into the whole text."""
    data_dir = _data_dir(data_dir)
    allowed = _download_allowed(download)
    if not allowed and not os.path.isdir(os.path.join(data_dir, TINY_SHAKESPEARE_TFDS)):
        # Surely not prepared and no download allowed: say so without importing TensorFlow.
        raise _unavailable(name, data_dir, "downloads disabled: KERASDL_OFFLINE=1")
    try:
        import tensorflow_datasets as tfds

        from kerasdl.data import loading
    except ImportError as exc:
        raise KerasdlUsageError(
            f"tfds dataset {name!r} needs tensorflow-datasets ({exc}); give the text file instead, "
            f"e.g. --dataset {TINY_SHAKESPEARE_FILE}"
        ) from None
    builder = loading._make_builder(TINY_SHAKESPEARE_TFDS, name, data_dir)
    if not loading._is_prepared(builder):
        if not allowed:
            raise _unavailable(name, data_dir, "downloads disabled: KERASDL_OFFLINE=1")
        if not loading._network_reachable():
            raise _unavailable(name, data_dir, "no network")
        os.makedirs(data_dir, exist_ok=True)
        with loading._file_lock(os.path.join(data_dir, f".{TINY_SHAKESPEARE_TFDS}.lock")):
            builder = loading._make_builder(TINY_SHAKESPEARE_TFDS, name, data_dir)
            if not loading._is_prepared(builder):
                try:
                    with loading._quiet_tfds(show_progress=True):
                        builder.download_and_prepare()
                except Exception as exc:  # noqa: BLE001 - any download failure is the user's network
                    raise _unavailable(name, data_dir, loading._one_line(exc)[:200]) from None
        builder = loading._make_builder(TINY_SHAKESPEARE_TFDS, name, data_dir)
    parts = {}
    for split in TFDS_SPLITS:
        pieces = [ex["text"] for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False))]
        parts[split] = "".join(p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in pieces)
    text = "".join(parts[s] for s in TFDS_SPLITS)
    description = {
        "kind": "text",
        "source": "tfds",
        "tfds_name": TINY_SHAKESPEARE_TFDS,
        "tfds_version": str(builder.info.version),
        "data_dir": data_dir,
        "join": "tfds train + validation + test texts, in that order (the whole input.txt), "
                "then split by kerasdl's rule",
        "tfds_split_chars": {s: len(t) for s, t in parts.items()},
        "chars": len(text),
        "sha256": sha256_text(text),
    }
    return TextSource(name=name, source="tfds", text=text, description=description)
