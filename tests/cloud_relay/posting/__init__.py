"""Tests of the posting store and the Odoo writer."""
