"""Commands load their modules on use: `liveml batch run` imports none of the other commands' modules, while
help, typo suggestions and every command read as if all were registered up front."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from liveml.cli.lazy import build
from liveml.cli.main import COMMANDS
from tests.unit.cli.conftest import Cli

#: modules of other commands, and what only they import (the alert channels' HTTP client, cron)
NOT_FOR_BATCH = (
    "liveml.cli.alerts",
    "liveml.cli.audit",
    "liveml.cli.explain",
    "liveml.cli.image",
    "liveml.cli.k8s",
    "liveml.cli.keys",
    "liveml.cli.models",
    "liveml.cli.monitor",
    "liveml.cli.schedules",
    "liveml.cli.serve",
    "liveml.jobs.scheduler",
    "liveml.monitoring.alerts",
    "liveml.registry.prepare",
    "croniter",
    "httpx",
)


def test_batch_run_imports_no_other_command() -> None:
    script = textwrap.dedent(
        """
        import sys
        from liveml.cli.main import main
        try:
            main(["batch", "run", "--help"])
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        print(" ".join(sorted(sys.modules)))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert {"liveml.cli.batch", "liveml.cli.jobs"} <= loaded
    assert not loaded & set(NOT_FOR_BATCH)


def test_help_lists_every_command_with_its_help(cli: Cli) -> None:
    listed = cli("--help")
    assert listed.code == 0
    for name, target in COMMANDS.items():
        command = build(name, target, "rich")
        first = (command.help or "").strip().splitlines()[0]
        line = next((line for line in listed.out.splitlines() if line.startswith(f"│ {name} ")), "")
        assert first[:30] in line, (name, first)
    batch = cli("batch", "--help")
    assert batch.code == 0
    rows = [line.split() for line in batch.out.splitlines() if line.startswith("│ ")]
    assert {"run", "schedule"} <= {row[1] for row in rows if len(row) > 1}


def test_typos_and_unknown_commands_still_get_usage_errors(cli: Cli) -> None:
    typo = cli("bach")
    assert typo.code == 2 and "Did you mean 'batch'?" in typo.err
    unknown = cli("batch", "nosuch")
    assert unknown.code == 2 and "No such command 'nosuch'" in unknown.err
