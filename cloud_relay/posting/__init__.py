"""Posting stored events into Odoo: routing, one effect per event family, the worker and its
durable state.

The concept is *posting* in the code (``cloud_relay/posting``, ``PostingWorker``,
``PostingStats``, ``tests/cloud_relay/posting``); the operator-facing names keep their word
"writer" so nothing a deployment reads changes: the ``[writer]`` section, the
``cloud_relay_writer_*`` metrics, ``/healthz``'s ``writer`` and the page's "Odoo writer". How to
add an event type: ``docs/posting.md``.
"""
