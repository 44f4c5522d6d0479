"""Reconciliation: does Odoo hold what the plant reported through the relay?"""
