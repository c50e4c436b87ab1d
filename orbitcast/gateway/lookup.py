"""Threema's lookup hashes: HMAC-SHA256 with fixed public keys (same as the SDK's `HMAC`)."""

from __future__ import annotations

import hashlib
import hmac

_EMAIL_KEY = bytes.fromhex("30a5500fed9701fa6defdb610841900febb8e430881f7ad816826264ec09bad7")
_PHONE_KEY = bytes.fromhex("85adf8226953f3d96cfd5d09bf29555eb955fcd8aa5ec4f9fcd869e258370723")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def normalise_phone(phone: str) -> str:
    return "".join(c for c in phone if c.isdigit())


def email_hash(email: str) -> str:
    return hmac.new(_EMAIL_KEY, normalise_email(email).encode("utf-8"), hashlib.sha256).hexdigest()


def phone_hash(phone: str) -> str:
    return hmac.new(_PHONE_KEY, normalise_phone(phone).encode("ascii"), hashlib.sha256).hexdigest()
