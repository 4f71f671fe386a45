"""Google Sheets enrichment: which rows a job reads, what it charges and where its results land."""
