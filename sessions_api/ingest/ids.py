"""Session ids that look alike are alike: every id is stored in Unicode NFC, and ids holding
invisible characters are refused.

Two spellings of "café" (precomposed é, or e + combining accent) look the same everywhere a
person reads them; in NFC they are one id, so they are one session. The document keeps its
own bytes; a warning says when its spelling differed from the key it is stored under.
Invisible format characters (zero-width space and joiners, the byte-order mark, soft hyphen,
bidirectional overrides: Unicode category Cf) would make ids that differ where no one can see;
an id holding one is refused.
"""

from __future__ import annotations

import unicodedata

from sessions_api.domain import ParseWarning
from sessions_api.errors import InvalidDocument


def normalized_session_key(key: str, *, from_request: bool, warnings: list[ParseWarning]) -> str:
    """``key`` in NFC; InvalidDocument (``invalid_external_id``) when it holds an invisible
    character. ``from_request``: the key came from ``?external_id=``, not the document."""
    path = "?external_id" if from_request else ""
    for position, char in enumerate(key):
        if unicodedata.category(char) == "Cf":
            raise InvalidDocument(
                f"the session id holds an invisible character (U+{ord(char):04X} at position "
                f"{position}); ids must be visible text",
                code="invalid_external_id",
                path=path,
            )
    normalized = unicodedata.normalize("NFC", key)
    if normalized != key:
        warnings.append(
            ParseWarning(
                code="session_id_normalized",
                message="the session id is stored in Unicode NFC form; the document spells it "
                "with other code points that look the same",
                path=path,
            )
        )
    return normalized
