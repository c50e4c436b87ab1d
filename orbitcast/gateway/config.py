"""Gateway configuration (pydantic, so a bad file names the field and the reason)."""

from __future__ import annotations

import os
import tempfile

from pydantic import BaseModel, Field, field_validator

from orbitcast.sealing.errors import SealingError
from orbitcast.sealing.keys import decode_public_key, public_key_from_hex, validate_identity

DEFAULT_CAPABILITIES = ("text", "image", "video", "file")
DEFAULT_BLOB_STORE = os.path.join(tempfile.gettempdir(), "orbitcast", "threema-blobs")


class IdentityConfig(BaseModel):
    """One gateway account: API identity, its secret and public key, where it receives."""

    identity: str
    secret: str = Field(min_length=1)
    public_key: str  # `public:<hex>` or bare 64 hex
    credits: int = Field(default=1_000_000, ge=0)
    callback_url: str | None = None
    capabilities: list[str] = Field(default_factory=lambda: list(DEFAULT_CAPABILITIES))
    nickname: str | None = None
    phone: str | None = None  # E.164 digits, for /lookup/phone
    email: str | None = None  # for /lookup/email

    @field_validator("identity")
    @classmethod
    def _identity(cls, value: str) -> str:
        try:
            return validate_identity(value)
        except SealingError as exc:
            raise ValueError(exc.reason) from exc

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if not value.isascii():
            raise ValueError("API secret must be ASCII (it keys the callback HMAC)")
        return value

    @field_validator("public_key")
    @classmethod
    def _public_key(cls, value: str) -> str:
        try:
            key = decode_public_key(value) if value.startswith("public:") else public_key_from_hex(value)
        except SealingError as exc:
            raise ValueError(exc.reason) from exc
        return bytes(key).hex()  # normalised: bare lowercase hex, as /pubkeys answers

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("callback_url must be an http(s) URL")
        return value


class GatewayConfig(BaseModel):
    identities: list[IdentityConfig] = Field(default_factory=list)
    max_box_bytes: int = Field(default=4000, gt=0)
    max_blob_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    blob_store: str = DEFAULT_BLOB_STORE  # a local path or a pyarrow.fs URI (s3://, gs://, file://)
    max_queue: int = Field(default=10_000, gt=0)  # per recipient
    # Where undelivered messages are kept (a local path or a pyarrow.fs URI), so that a gateway
    # that starts again delivers them (journal.py); None: in memory only. A message is written
    # once it has waited `journal_after_s` undelivered.
    queue_journal: str | None = None
    journal_after_s: float = Field(default=1.0, gt=0)
    # Memory for transient blobs (LL-HLS parts): about two minutes of the demo ladder.
    transient_blob_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    retry_initial_s: float = Field(default=0.05, gt=0)
    retry_factor: float = Field(default=2.0, ge=1)
    retry_max_s: float = Field(default=5.0, gt=0)
    callback_timeout_s: float = Field(default=5.0, gt=0)
    # A message refused (any answer but 200) this many times is dead-lettered; a 4xx other
    # than 408/425/429 at once (the recipient judged it, and will again).
    max_attempts: int = Field(default=10, ge=1)
    # A message still undelivered this long after it was accepted is dead-lettered, whatever
    # the reason (a recipient that does not answer at all is waited for until then).
    max_age_s: float = Field(default=300.0, gt=0)
    dead_letters_kept: int = Field(default=100, ge=0)  # letters kept per recipient (counts are all)
    alarm_window_s: float = Field(default=60.0, gt=0)  # the alarm stays up this long after one
    # Requests per second one client address may make to the HTTP API (429 beyond). The
    # cluster's own packagers and edge reach the gateway by actor calls, not through this.
    rate_per_client: float = Field(default=200.0, gt=0)
    burst_per_client: int = Field(default=400, ge=1)
