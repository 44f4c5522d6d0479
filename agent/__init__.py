"""Edge agent: reads the plant floor, keeps events durably, uploads them signed and in order."""

__version__ = "0.1.0"
