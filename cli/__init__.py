"""The `vectra` command line (installed as the package vectra_cli)."""
