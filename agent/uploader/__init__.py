"""Uploads queued events to the cloud relay in signed, ordered batches (``uploader.Uploader``)."""
