"""Errors of the edge agent, sorted by what the caller does with them."""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error the agent raises."""


class ConfigError(AgentError):
    """The configuration is unusable: the program refuses to start (exit code 2)."""


class TransientError(AgentError):
    """A failure that may pass: retry with backoff."""


class RejectedError(AgentError):
    """Input that can never be accepted: count it, keep it with its reason, go on."""


class QueueFullError(AgentError):
    """The queue is at its byte limit and its overflow policy refuses this event."""


class QueueCorruptError(AgentError):
    """The queue file could not be opened as a healthy SQLite database."""
