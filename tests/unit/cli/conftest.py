"""The in-process CLI fixture is in tests/conftest.py (the end-to-end tests use it too); its names stay
importable from here."""

from tests.conftest import Cli, CliResult, checked, cli  # noqa: F401
