"""Retry policy for delivery: when to try again, and which answers are worth retrying.

Policy (documented in the README and enforced here):

* Success: status 0x0000 and the C-STORE *warnings* 0xB000 (coercion of data
  elements), 0xB006 (elements discarded) and 0xB007 (data set does not match
  SOP class, stored anyway). The PACS has the object; the delivery is ``sent``.
* Permanent refusal, dead at once: 0xA9xx (data set does not match SOP class),
  0xCxxx (cannot understand), 0x0122 (SOP class not supported), 0x0117 (invalid
  SOP instance), 0x0124 (not authorised), and a SOP class the destination did not
  accept during association negotiation. Sending the same bytes again cannot help;
  an operator requeues with ``screening-node outbox --retry`` after fixing the PACS.
* Other refusals (e.g. 0xA7xx out of resources, 0x0110 processing failure):
  retried with backoff, at most ``REFUSAL_MAX_ATTEMPTS`` attempts.
* Network errors (connection refused, association rejected or aborted, timeout,
  no response): transient, retried with backoff up to ``delivery.max_attempts``.

Delay before attempt n+1 after n failed attempts: ``initial * 2**(n-1)`` capped
at ``maximum``, plus a jitter of at most ``jitter`` (a fraction) that is a hash
of the delivery id and the attempt number: deterministic, yet deliveries that
failed together do not all come back in the same second.
"""

from __future__ import annotations

import hashlib
from typing import Literal

SUCCESS_WARNINGS = frozenset({0xB000, 0xB006, 0xB007})
PERMANENT_CODES = frozenset({0x0117, 0x0122, 0x0124})
REFUSAL_MAX_ATTEMPTS = 3
DEFAULT_JITTER = 0.1

Verdict = Literal["success", "permanent", "transient_refusal"]


def backoff_delay(attempt: int, initial_s: float, maximum_s: float, *, jitter: float = 0.0,
                  key: int = 0) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    base = initial_s * 2.0 ** min(attempt - 1, 62)  # bounded exponent: no overflow at attempt 1000
    if jitter > 0:
        digest = hashlib.sha256(f"{key}:{attempt}".encode()).digest()
        base *= 1.0 + jitter * int.from_bytes(digest[:4], "big") / 2**32
    return min(base, maximum_s)


def classify_status(status: int) -> Verdict:
    """What a C-STORE response status means for this delivery."""
    if status == 0x0000 or status in SUCCESS_WARNINGS:
        return "success"
    if status in PERMANENT_CODES or (status & 0xFF00) == 0xA900 or (status & 0xF000) == 0xC000:
        return "permanent"
    return "transient_refusal"


def refusal_attempt_limit(max_attempts: int) -> int:
    """Attempts allowed for a refusal that might clear up (out of resources and the like)."""
    return max(1, min(REFUSAL_MAX_ATTEMPTS, max_attempts))
