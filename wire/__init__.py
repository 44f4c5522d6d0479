"""The wire contract between edge agent and cloud relay: events, batches, signatures.

Both sides import this package and nothing of each other.
"""
