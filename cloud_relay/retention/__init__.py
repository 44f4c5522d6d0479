"""Retention: removing what was posted and reconciled, so the database stops growing."""
