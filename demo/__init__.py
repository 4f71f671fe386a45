"""The demo `make run` starts with: the seed, the large deterministic world and its mail world
on loopback. Only the CLI and tests import it."""
