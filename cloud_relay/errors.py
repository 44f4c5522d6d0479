"""Errors of the cloud relay, sorted by what the caller does with them."""

from __future__ import annotations


class RelayError(Exception):
    """Root of every error the relay raises."""


class ConfigError(RelayError):
    """The configuration is unusable: the program refuses to start (exit code 2)."""


class TransientError(RelayError):
    """A failure that may pass (store unreachable, serialization conflict): retry."""


class RejectedError(RelayError):
    """A request or record that can never be accepted as it is."""


class SequenceGapError(RejectedError):
    """A batch starts past the gateway's next expected seq."""

    def __init__(self, gateway_id: str, expected_seq: int) -> None:
        super().__init__(
            f"gateway {gateway_id}: batch starts past a gap; expected seq {expected_seq}"
        )
        self.gateway_id = gateway_id
        self.expected_seq = expected_seq


class DuplicateEventError(RejectedError):
    """A batch holds an event id already stored under another gateway or seq: it can never
    be stored as it is (409, naming the event)."""

    def __init__(self, message: str, event_id: str | None) -> None:
        super().__init__(message)
        self.event_id = event_id
