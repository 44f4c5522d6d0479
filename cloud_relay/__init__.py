"""Cloud relay: verifies, deduplicates and stores gateway batches, then posts them into Odoo."""

__version__ = "0.1.0"
