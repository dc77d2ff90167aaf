"""The `pdv` command line."""
