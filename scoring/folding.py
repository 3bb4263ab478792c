"""Fold text into one script for matching and sentiment features: traditional characters to
simplified (OpenCC's t2s character table), full-width ASCII to ASCII, upper to lower case.

Why one character table and not OpenCC's full phrase conversion:
* speed: `str.translate` with a prebuilt table is one C-level pass (~1 us for a Weibo-sized
  post), where a call into OpenCC costs ~5 us; the job has ~45 us of Python per post;
* safety for matching: a per-character map keeps every substring. If a watch word occurs in
  the text, its folding occurs in the folded text. OpenCC's phrase rules would break that
  (t2s turns the simplified 打坏 into 打坯, so a word 坏 would stop matching there).
Stored text is never folded: a post keeps the characters it was written in (it is evidence).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

# Where OpenCC's t2s changes a single character: CJK symbols, the unified ideographs with
# extension A, the compatibility ideographs, and the supplementary ideograph planes.
_T2S_RANGES = ((0x2E80, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F),
               (0x20000, 0x2FA1F), (0x30000, 0x3134F))


@lru_cache(maxsize=1)
def t2s_characters() -> dict[int, str]:
    """Code point -> simplified character(s), for every character t2s changes on its own.

    Built once per process (~0.1 s) by converting each candidate character, one line per
    character so that no phrase rule spans two of them. Through the `opencc` program that
    the opencc wheel ships, not its Python binding: the job's window scorer runs inside the
    JVM's embedded interpreter (PyFlink thread mode), where the binding's GIL handling
    deadlocked the job. The binding is the fallback where the program is missing."""
    chars = [chr(cp) for lo, hi in _T2S_RANGES for cp in range(lo, hi + 1)]
    source = "\n".join(chars)
    out = _convert_with_program(source)
    if out is None:
        import opencc

        out = opencc.OpenCC("t2s").convert(source)
    lines = out.split("\n")
    if len(lines) != len(chars):
        raise RuntimeError("OpenCC t2s changed the number of lines of a one-character-per-line table")
    return {ord(ch): folded for ch, folded in zip(chars, lines) if folded != ch and folded}


def _convert_with_program(text: str) -> str | None:
    """OpenCC t2s through the wheel's own command-line program, or None if it has none."""
    import subprocess
    from importlib.util import find_spec

    spec = find_spec("opencc")
    if spec is None or not spec.submodule_search_locations:
        return None
    clib = Path(list(spec.submodule_search_locations)[0]) / "clib"
    program, config = clib / "bin" / "opencc", clib / "share" / "opencc" / "t2s.json"
    if not (program.is_file() and config.is_file()):
        return None
    try:
        run = subprocess.run([str(program), "-c", str(config)], input=text.encode("utf-8"),
                             capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    out = run.stdout.decode("utf-8")
    return out[:-1] if out.endswith("\n") and not text.endswith("\n") else out


# Full-width letters and digits (ＫｕａｉＳｏｎｇ, ３１５): folded to ASCII. Full-width
# punctuation (，！) is left alone: it is in nearly every Chinese post and no watch word or
# word-boundary rule depends on it.
_FULL_WIDTH_ALNUM = (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))


@lru_cache(maxsize=1)
def fold_table() -> dict[int, str]:
    """Code point -> replacement applied after `str.lower` (all one character to one)."""
    table = {cp: chr(cp - 0xFEE0).lower() for cp in _FULL_WIDTH_ALNUM}
    table.update(t2s_characters())
    return table


@lru_cache(maxsize=1)
def _folded_chars() -> frozenset[str]:
    return frozenset(map(chr, fold_table()))


@lru_cache(maxsize=1)
def _fold_array():
    """`fold_table` as a numpy lookup over every code point (4 MiB), for batches."""
    import numpy as np

    table = np.arange(0x110000, dtype=np.uint32)
    for cp, folded in fold_table().items():
        if len(folded) == 1:
            table[cp] = ord(folded)
    return table


def fold(text: str) -> str:
    """The matching form of `text`: lower case, simplified, half-width letters and digits.

    Most posts hold no character to replace: a set test (~0.5 us) spares them the
    per-character translate (~5 us per post)."""
    low = text.lower()
    if _folded_chars().isdisjoint(low):
        return low
    return low.translate(fold_table())


def fold_all(texts: list[str]) -> list[str]:
    """`fold` of each text; the batch goes through one numpy lookup (~0.4 us per post)."""
    if len(texts) < 8 or not all(len(v) == 1 for v in fold_table().values()):
        return [fold(t) for t in texts]
    import numpy as np

    joined = "\x00".join(texts).lower()
    if joined.count("\x00") != len(texts) - 1:  # a text holds NUL itself
        return [fold(t) for t in texts]
    codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return _fold_array()[codes].tobytes().decode("utf-32-le", "surrogatepass").split("\x00")
