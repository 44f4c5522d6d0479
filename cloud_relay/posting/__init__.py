"""Posting stored events into Odoo: routing, per-order ledgers and the writer's durable state."""
