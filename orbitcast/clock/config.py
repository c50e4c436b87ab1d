"""Configuration of the clock: which reference the authority trusts, where its NTP server
listens, how often clients sync. Every field has a default that serves the local demo."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ClockConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: Literal["system", "ntp", "nmea"] = Field(
        "system", description="what the authority trusts: the host clock, an upstream NTP "
        "server, or NMEA sentences from a GPS receiver")
    # -- upstream NTP reference
    ntp_server: str | None = Field(None, description="upstream 'host[:port]' (port 123 if "
                                   "omitted); required when reference is 'ntp'")
    upstream_queries: int = Field(4, ge=1, le=16, description="queries per poll; the "
                                  "least-delay one is used")
    upstream_poll_s: float = Field(16.0, gt=0)
    upstream_timeout_s: float = Field(1.0, gt=0)
    # -- NMEA reference
    nmea_source: str | None = Field(None, description="a serial device path (e.g. "
                                    "/dev/ttyUSB0) or 'host:port' of a TCP NMEA feed; "
                                    "required when reference is 'nmea'")
    nmea_delay_s: float = Field(0.0, ge=0, le=1.0, description="how late after the second "
                                "the receiver emits its sentence (chrony's refclock "
                                "'offset'); measure it against a good NTP source")
    nmea_uncertainty_s: float = Field(0.05, gt=0, description="error admitted for one "
                                      "sentence's timing (no PPS)")
    # -- trust in the reference
    silent_after_s: float = Field(5.0, gt=0, description="no valid time for this long: "
                                  "the reference is reported silent and held over")
    jump_threshold_s: float = Field(0.5, gt=0, description="a sample this far from the "
                                    "reference's recent history is a jump: not trusted")
    jump_confirm: int = Field(10, ge=1, description="consecutive consistent samples at a "
                              "new offset before the reference is trusted again")
    local_stratum: int = Field(10, ge=1, le=15, description="stratum advertised when the "
                               "reference is the system clock")
    # -- the authority's NTP server
    ntp_serve: bool = True
    ntp_host: str = Field("auto", description="address the UDP NTP server binds: 'auto' "
                          "(loopback for a pipeline started here, the node's cluster address "
                          "for a job on a cluster), 'node' (the address Ray uses for the "
                          "node: every node of the cluster reaches it), 0.0.0.0, or an address")
    ntp_port: int = Field(1123, ge=0, le=65535, description="1123 needs no root; 0 = any")
    # -- discipline (authority and clients)
    tick_interval_s: float = Field(1.0, gt=0, description="how often the authority reads "
                                   "its reference")
    sync_interval_s: float = Field(2.0, gt=0, description="how often a client exchanges "
                                   "timestamps with the authority")
    exchange_timeout_s: float = Field(1.0, gt=0)
    holdover_after_s: float = Field(10.0, gt=0, description="no good sample for this long: "
                                    "state becomes holdover")
    max_slew_ppm: float = Field(500.0, gt=0, le=100_000)
    step_forward_s: float | None = Field(0.128, description="behind by more than this: "
                                         "step forward instead of slewing; None: always slew")

    @model_validator(mode="after")
    def _reference_has_its_source(self) -> "ClockConfig":
        if self.reference == "ntp" and not self.ntp_server:
            raise ValueError("reference 'ntp' needs ntp_server ('host[:port]')")
        if self.reference == "nmea" and not self.nmea_source:
            raise ValueError("reference 'nmea' needs nmea_source (a tty path or 'host:port')")
        return self


LOOPBACK_HOST = "127.0.0.1"


def ntp_bind_host(setting: str, node_ip: str, on_cluster: bool) -> str:
    """The address the authority's NTP server binds for the `ntp_host` setting.

    Stamping actors on other nodes cannot reach a loopback server (they fall back to the Ray
    call, ~300 us less accurate): a job on a cluster binds the node's cluster address, the one
    Ray's own traffic uses, so every node reaches it; a pipeline started on this machine keeps
    to loopback, as a laptop should."""
    if setting == "auto":
        return node_ip if on_cluster else LOOPBACK_HOST
    if setting == "node":
        return node_ip
    return setting
