"""Enrichment of many rows at once: the job abstraction (jobs.py) and its CSV front (csv_enrich.py)."""
