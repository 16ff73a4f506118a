"""Static (per-token) sentence-model embeddings: an EXPERIMENT, not shipped (see the model card).

Measured by ``training/pi_experiments.py`` under leave-one-source-group-out, these features alone reached
~9-10 % TPR at 1 % FPR and lowered the hashed n-gram model's TPR when concatenated to it, so the package
does not ship them; the code stays here so the experiment can be rerun (numpy-only inference, as it
would be in the package).

A table distilled from sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) by
``training/distill_static.py``: every WordPiece vocabulary entry was run through the sentence model on
its own, the outputs reduced with PCA and quantised to int8 with one scale per row. At run time a text is
split with the model's own (uncased) WordPiece vocabulary, the rows of its tokens are looked up and
pooled: no neural network runs, so the cost is a tokenizer pass plus a gather.

Pooled features (:func:`StaticEmbeddings.features`): the mean of all token vectors, and the element-wise
maximum over the means of sliding windows of :data:`SPAN` tokens, so an instruction hidden in a long
document (indirect injection) is not averaged away. Both halves are L2-normalised.

The table would ship as ``models/minilm_static.npz`` (plain arrays, loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from bastion.errors import DetectorError

MAX_WORD = 100  # longer "words" become [UNK], as in BERT's WordPiece
SPAN = 12  # tokens per sliding window for the max-pooled half
_CJK = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002a6df\U0002a700-\U0002b73f\U0002b740-\U0002b81f\U0002f800-\U0002fa1f"
)
# One CJK ideograph, a run of letters/digits (no underscore, no ideograph), or one other visible char.
# Character classes and one bounded look-ahead only: linear time on any input.
_TOKEN = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])[^\W_])+|\S")


def basic_tokens(text: str) -> list[str]:
    """BERT-style basic tokenisation: lower-case, accents stripped, split on spaces and punctuation."""
    text = text.lower()
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    return _TOKEN.findall(text)


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: the WordPiece cache keys on it
class StaticEmbeddings:
    """A WordPiece vocabulary and its int8 embedding table (one float scale per row)."""

    vocab: dict[str, int]
    table: npt.NDArray[np.int8]
    scale: npt.NDArray[np.float32]
    unk_id: int

    @property
    def dims(self) -> int:
        """Width of one token vector."""
        return int(self.table.shape[1])

    def token_ids(self, text: str) -> npt.NDArray[np.int64]:
        """WordPiece ids of ``text`` (unknown words map to ``[UNK]``)."""
        piece = self._word_pieces
        out: list[int] = []
        for word in basic_tokens(text):
            out.extend(piece(word))
        return np.asarray(out, dtype=np.int64)

    def features(self, text: str) -> npt.NDArray[np.float32]:
        """Pooled features of ``text``: [mean of token vectors | max over window means], 2 x dims."""
        ids = self.token_ids(text)
        d = self.dims
        if ids.size == 0:
            return np.zeros(2 * d, dtype=np.float32)
        vecs = self.table[ids].astype(np.float32) * self.scale[ids, None]
        mean = vecs.mean(axis=0)
        if ids.size <= SPAN:
            peak = mean
        else:
            csum = np.cumsum(np.vstack((np.zeros((1, d), np.float32), vecs)), axis=0)
            peak = ((csum[SPAN:] - csum[:-SPAN]) / SPAN).max(axis=0)
        return np.concatenate((_unit(mean), _unit(peak))).astype(np.float32)

    def _word_pieces(self, word: str) -> tuple[int, ...]:
        return _pieces(self, word)


@lru_cache(maxsize=65536)
def _pieces(emb: StaticEmbeddings, word: str) -> tuple[int, ...]:
    """Greedy longest-match-first WordPiece split of one basic token (cached; thread-safe)."""
    vocab = emb.vocab
    if len(word) > MAX_WORD:
        return (emb.unk_id,)
    whole = vocab.get(word)
    if whole is not None:
        return (whole,)
    out: list[int] = []
    start = 0
    while start < len(word):
        end = len(word)
        found = -1
        while start < end:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            idx = vocab.get(sub)
            if idx is not None:
                found = idx
                break
            end -= 1
        if found < 0:
            return (emb.unk_id,)
        out.append(found)
        start = end
    return tuple(out)


def _unit(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    n = float(np.sqrt(np.dot(v, v)))
    return v / n if n > 0 else v


def from_arrays(
    vocab_bytes: npt.NDArray[np.uint8], table: npt.NDArray[np.int8], scale: npt.NDArray[np.float32]
) -> StaticEmbeddings:
    """Build the table from its stored arrays (vocabulary as newline-joined UTF-8 bytes)."""
    words = bytes(vocab_bytes).decode("utf-8").split("\n")
    if table.ndim != 2 or len(words) != table.shape[0] or scale.shape != (table.shape[0],):
        raise DetectorError("static embedding table and vocabulary do not match")
    vocab = {w: i for i, w in enumerate(words)}
    if "[UNK]" not in vocab:
        raise DetectorError("static embedding vocabulary has no [UNK] entry")
    return StaticEmbeddings(vocab, table, scale.astype(np.float32), vocab["[UNK]"])


def quantise(
    embeddings: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """Per-row symmetric int8 quantisation: (table, scale) with ``table * scale ~ embeddings``."""
    peak = np.abs(embeddings).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    table = np.clip(np.rint(embeddings / scale[:, None]), -127, 127).astype(np.int8)
    return table, scale


_loaded: StaticEmbeddings | None = None
_lock = threading.Lock()
FILE = str(__import__("pathlib").Path(__file__).parent / "out" / "minilm_static.npz")


def load_static_embeddings() -> StaticEmbeddings:
    """The shipped table, loaded once (thread-safe)."""
    global _loaded
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is None:
            try:
                with np.load(FILE, allow_pickle=False) as data:
                    _loaded = from_arrays(data["vocab"], data["table"], data["scale"])
            except (OSError, KeyError, ValueError) as e:
                raise DetectorError(f"static embedding table missing or unreadable: {e}") from e
    return _loaded
