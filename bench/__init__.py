"""Benchmarks, each beside the physical limit measured in the same run.

``python -m bench`` runs them all and prints one table; ``python3 bench/<name>.py`` runs one
with its own detail. Each module's ``run(...)`` returns its figures as a dict for the runner.
"""
