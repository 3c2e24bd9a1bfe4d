"""The `Indicator` record and the list of indicator types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mitremap.schema import IndicatorJSON

# Every type MitreMap extracts, in the order tables and docs list them.
IOC_TYPES: tuple[str, ...] = (
    "url",
    "domain",
    "ipv4",
    "ipv6",
    "email",
    "md5",
    "sha1",
    "sha256",
    "sha512",
    "ssdeep",
    "imphash",
    "ja3",
    "cve",
    "attack_technique",
    "mac",
    "asn",
    "onion",
    "bitcoin",
    "bitcoincash",
    "litecoin",
    "dogecoin",
    "dashcoin",
    "zcash",
    "ethereum",
    "monero",
    "ripple",
    "tron",
    "tezos",
    "cardano",
    "solana",
    "windows_path",
    "unix_path",
    "registry_key",
    "file_name",
    "user_agent",
    "arn",
    "yara_rule",
)

HASH_TYPES = frozenset({"md5", "sha1", "sha256", "sha512", "ssdeep", "imphash", "ja3"})
CRYPTO_TYPES = frozenset(
    {
        "bitcoin", "bitcoincash", "litecoin", "dogecoin", "dashcoin", "zcash", "ethereum",
        "monero", "ripple", "tron", "tezos", "cardano", "solana",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Indicator:
    """One indicator occurrence: `value` refanged and normalised, `raw` exactly as written,
    `start`/`end` offsets of `raw` in the original text. `private` marks private,
    documentation and internal addresses and names, so users can filter them."""

    type: str
    value: str
    raw: str
    start: int
    end: int
    private: bool = False

    def to_dict(self) -> IndicatorJSON:
        """Plain JSON-ready dict."""
        return {
            "type": self.type,
            "value": self.value,
            "raw": self.raw,
            "start": self.start,
            "end": self.end,
            "private": self.private,
        }
