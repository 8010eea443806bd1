"""Subcommands of the wms-relay CLI, one module per command family."""
