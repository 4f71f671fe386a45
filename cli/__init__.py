"""The `tributary` command line: parse, call one core service, render."""
