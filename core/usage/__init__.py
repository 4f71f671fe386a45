"""Usage digests: what a team spent in a day or a week, a chart of it, and their scheduled delivery."""
