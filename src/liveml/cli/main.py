"""Entry point: the Typer app, global options, and the one place errors become messages and exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from liveml import __version__
from liveml.cli import startup
from liveml.cli.lazy import lazy_group
from liveml.cli.render import error_console
from liveml.errors import Invalid, LivemlError, first_problem
from liveml.settings import Settings

#: exit codes: 0 success, 1 the operation failed (not found, conflict, unavailable, corrupted), 2 bad input
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

#: every command, in the order help lists them: "module:attribute" of a command function or a Typer app. A
#: command's module is imported when that command runs (or help lists it), so `liveml batch run` does not
#: import the alert channels, the scheduler or the image builder.
COMMANDS = {
    **{
        n: f"liveml.cli.models:{n}"
        for n in ("init", "push", "models", "versions", "show", "delete", "formats")
    },
    "rollback": "liveml.cli.aliases:rollback",
    "predict": "liveml.cli.predict:predict",
    "serve": "liveml.cli.serve:serve",
    "scheduler": "liveml.cli.schedules:scheduler",
    "feedback": "liveml.cli.monitor:feedback",
    "explain": "liveml.cli.explain:explain",
    "dockerfile": "liveml.cli.image:dockerfile",
    "build": "liveml.cli.image:build",
    "k8s": "liveml.cli.k8s:k8s",
    "alias": "liveml.cli.aliases:alias_app",
    "batch": "liveml.cli.batch:batch_app",
    "jobs": "liveml.cli.jobs:jobs_app",
    "schedules": "liveml.cli.schedules:schedules_app",
    "monitor": "liveml.cli.monitor:monitor_app",
    "alerts": "liveml.cli.alerts:alerts_app",
    "keys": "liveml.cli.keys:keys_app",
    "audit": "liveml.cli.audit:audit_app",
    "export": "liveml.cli.export:export_app",
}

app = typer.Typer(
    cls=lazy_group(COMMANDS),
    name="liveml",
    help="Make a trained model live: register versions, move aliases, predict.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"liveml {__version__}")
        raise typer.Exit()


def _setting_names(name: str) -> str:
    """Every name a setting is read from, e.g. ``LIVEML_SERVER_PORT / AIP_HTTP_PORT / ...``."""
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = [str(c) for c in getattr(alias, "choices", [])] if alias is not None else []
        if name == field_name or name in choices:
            envs = [c for c in choices if c.isupper()] or [f"LIVEML_{field_name.upper()}"]
            return " / ".join(envs)
    return name


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Data home (default ./.liveml or $LIVEML_HOME).", show_default=False),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """liveml: a self-hosted, versioned, monitored prediction service for trained models."""
    startup.release()  # the command's modules are imported: the collector is back on for its work
    try:
        ctx.obj = Settings(home=home) if home is not None else Settings()
    except ValidationError as exc:
        name, problem, value = first_problem(exc)
        raise Invalid(
            f"setting {_setting_names(name)} has a bad value {value!r}: {problem}; "
            "fix that environment variable or liveml.toml (see docs/settings.md)"
        ) from exc


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every expected failure is one line on stderr and an exit code, never a traceback.
    Without ``argv`` this is the ``liveml`` process, which starts without the garbage collector (``startup``)."""
    if argv is None:
        startup.begin()
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="liveml", standalone_mode=False)
        if (
            isinstance(code, int) and code
        ):  # `raise typer.Exit(n)` in a command comes back as its return value
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        error_console().print("aborted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument, bad value
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            error_console().print(f"error: {exc}")
        sys.exit(EXIT_BAD_INPUT)
    except LivemlError as exc:
        error_console().print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
        sys.exit(EXIT_BAD_INPUT if isinstance(exc, Invalid) else EXIT_FAILURE)
    except KeyboardInterrupt:
        error_console().print("interrupted")
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
