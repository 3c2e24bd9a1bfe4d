"""Long runs of letters and digits: file hashes, cryptocurrency addresses and bare onion names.

A run is read whole (25 characters or more), then told apart by its length, its alphabet and
its checksum; addresses without a checksum (Solana) also need the coin named nearby.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mitremap.iocs import checksums, patterns, validators
from mitremap.iocs.refanging import Refanged
from mitremap.iocs.scanner import BASE32, HASH_BY_LENGTH, HEX, Candidate, is_foreign_letter

_HEX_RUN = re.compile(r"[0-9a-f]+|[0-9A-F]+")  # one case: "AbCd…" is no hash
_LONGEST_HASH = max(HASH_BY_LENGTH)
_MD5_CONTEXT = re.compile(r"(?i)\b(ja3s?|imphash)\b[^\n]{0,24}$")
_SOLANA_CONTEXT = re.compile(r"(?i)\b(?:solana|sol)\b")
_BASE58_VERSIONS = {
    b"\x00": "bitcoin", b"\x05": "bitcoin",
    b"\x30": "litecoin", b"\x32": "litecoin",
    b"\x1e": "dogecoin", b"\x16": "dogecoin",
    b"\x4c": "dashcoin", b"\x10": "dashcoin",
    b"\x41": "tron",
}  # fmt: skip
_TEZOS_PREFIXES = {b"\x06\xa1\x9f", b"\x06\xa1\xa1", b"\x06\xa1\xa4", b"\x02\x5a\x79"}
_ZCASH_PREFIXES = {b"\x1c\xb8", b"\x1c\xbd"}
_BECH32_HRPS = {"bc": "bitcoin", "ltc": "litecoin", "addr": "cardano"}


def find_runs(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """Every run of 25 or more ASCII letters and digits that is a hash, an address or a name."""
    position, size = 0, len(text)
    while position < size:
        match = patterns.NEXT_LONG_RUN.match(text, position)
        if match is None or match.start(1) == -1:
            return
        start, end = match.span(1)
        position = end
        if end < size and (
            text[end] == "_" or (text[end] > "\x7f" and is_foreign_letter(text[end]))
        ):
            continue
        before = text[start - 1] if start > 0 else ""
        if before == "_" or (before > "\x7f" and is_foreign_letter(before)):
            continue
        found = classify_run(text, start, end) or glued_hash(text, start, end)
        if found is not None:
            yield found


def classify_run(text: str, start: int, end: int) -> Candidate | None:
    """A run of 25+ letters and digits: a hash, a cryptocurrency address, a bare onion name."""
    run = text[start:end]
    size = len(run)
    if size in HASH_BY_LENGTH and _HEX_RUN.fullmatch(run) and not run.isdigit():
        return _hash(text, start, end, run)
    if size == 42 and run[:2] == "0x" and HEX.issuperset(run[2:]):
        return (start, end, "ethereum", run.lower(), False) if checksums.eip55_ok(run) else None
    if size == 56 and _bare_onion(text, end, run):
        return (start, end, "onion", run + ".onion", False)
    lower = run.lower()
    if lower.startswith(("bc1", "ltc1", "addr1")):
        return _bech32(start, end, run, lower)
    if size == 42 and lower[0] in "qp" and run in (lower, run.upper()):
        return _cashaddr(text, start, end, lower)
    return _base58_address(text, start, end, run)


def _bare_onion(text: str, end: int, run: str) -> bool:
    """A v3 onion name written without ".onion" (56 base32 letters, its checksum right); one
    followed by ".onion" is the dotted pass's."""
    return (
        run.islower()
        and BASE32.issuperset(run)
        and not text.startswith(".onion", end)
        and checksums.onion_v3_ok(run)
    )


def _bech32(start: int, end: int, run: str, lower: str) -> Candidate | None:
    """A Bech32 address (Bitcoin, Litecoin, Cardano) whose prefix names its coin."""
    hrp = checksums.bech32_hrp(run)
    return (start, end, _BECH32_HRPS[hrp], lower, False) if hrp in _BECH32_HRPS else None


def _hash(text: str, start: int, end: int, run: str) -> Candidate | None:
    """A hex run of a digest's length: MD5 (or a JA3 / imphash when named so), SHA-1/256/512."""
    if "00000" in run:
        return None  # shellcode or a memory dump: a digest almost never has 5 zeros in a row
    kind = HASH_BY_LENGTH[len(run)]
    if kind == "md5":
        window = text[max(0, start - 48) : start].lower()
        if "ja3" in window or "imphash" in window:
            context = _MD5_CONTEXT.search(window)
            if context:
                kind = "ja3" if context.group(1).lower().startswith("ja3") else "imphash"
    return (start, end, kind, run.lower(), False)


def _cashaddr(text: str, start: int, end: int, lower: str) -> Candidate | None:
    """A Bitcoin Cash address, with or without its `bitcoincash:` prefix."""
    if not checksums.cashaddr_ok(lower):
        return None
    if text[max(0, start - 12) : start].lower() == "bitcoincash:":
        return (start - 12, end, "bitcoincash", "bitcoincash:" + lower, False)
    return (start, end, "bitcoincash", "bitcoincash:" + lower, False)


def glued_hash(text: str, start: int, end: int) -> Candidate | None:
    """A hash glued to a word by PDF table extraction (`script.sh17d55dc0…`, `…ced9MD5`): the
    run starts or ends with exactly 32/40/64/128 well-mixed hex digits, cut off by a letter
    past `f`."""
    run = text[start:end]
    head, tail = _hex_edges(run)
    for piece_start, piece_end in ((start + head, end), (start, start + tail)):
        piece = text[piece_start:piece_end]
        if (
            len(piece) in HASH_BY_LENGTH
            and _HEX_RUN.fullmatch(piece)
            and validators.hex_well_mixed(piece)
        ):
            return (piece_start, piece_end, HASH_BY_LENGTH[len(piece)], piece.lower(), False)
    return _hash_after_extension(run, head, end)


def _hex_edges(run: str) -> tuple[int, int]:
    """Where the hex digits that end the run begin, and where those that start it end (each
    read no further than the longest hash)."""
    head = len(run)
    while head > 0 and len(run) - head <= _LONGEST_HASH and run[head - 1] in HEX:
        head -= 1
    tail = 0
    while tail < len(run) and tail <= _LONGEST_HASH and run[tail] in HEX:
        tail += 1
    return head, tail


def _hash_after_extension(run: str, head: int, end: int) -> Candidate | None:
    """A hash after a file extension that ends in hex letters: "exe" + SHA-1 reads as "e" +
    40 hex digits, so the extension's hex letters are given back to it."""
    for size in HASH_BY_LENGTH:
        extra = len(run) - head - size
        if 1 <= extra <= 3 and run[: head + extra].lower() in validators.FILE_EXTENSIONS:
            piece = run[head + extra :]
            if _HEX_RUN.fullmatch(piece) and validators.hex_well_mixed(piece):
                return (end - size, end, HASH_BY_LENGTH[size], piece.lower(), False)
    return None


def _base58_address(text: str, start: int, end: int, run: str) -> Candidate | None:
    """Monero, Cardano (Byron), Ripple, Bitcoin-family, Zcash, Tezos and Solana addresses."""
    size = len(run)
    if size in (95, 106) and run[0] in "48":
        return (start, end, "monero", run, False) if checksums.monero_ok(run) else None
    if run.startswith(("Ae2", "DdzFF")):
        return (start, end, "cardano", run, False) if checksums.cardano_byron_ok(run) else None
    if size > 44:
        return None
    if run[0] == "r":
        payload = checksums.b58check(run, checksums.RIPPLE_ALPHABET)
        if payload is not None and len(payload) == 21 and payload[0] == 0:
            return (start, end, "ripple", run, False)
    payload = checksums.b58check(run)
    if payload is not None:
        kind = _base58check_kind(payload)
        return (start, end, kind, run, False) if kind else None
    if 32 <= size <= 44 and _is_solana(text, start, run):
        return (start, end, "solana", run, False)
    return None


def _base58check_kind(payload: bytes) -> str | None:
    """The coin of a Base58Check payload, from its length and version bytes."""
    if len(payload) == 21 and payload[:1] in _BASE58_VERSIONS:
        return _BASE58_VERSIONS[payload[:1]]
    if len(payload) == 22 and payload[:2] in _ZCASH_PREFIXES:
        return "zcash"
    if len(payload) == 23 and payload[:3] in _TEZOS_PREFIXES:
        return "tezos"
    return None


def _is_solana(text: str, start: int, run: str) -> bool:
    """Solana keys have no checksum: a 32-byte Base58 value AND the word Solana close by."""
    raw = checksums.b58decode(run)
    if raw is None or len(raw) != 32:
        return False
    if run.isalpha() or run.isdigit() or run.islower() or run.isupper():
        return False
    return bool(_SOLANA_CONTEXT.search(text, max(0, start - 80), start))
