"""The Alembic migrations and the ORM describe the same schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from liveml import Registry, Settings
from liveml.registry.db import MIGRATIONS
from liveml.registry.schema import Base

TABLES = {"models", "model_versions", "aliases", "alias_events", "alembic_version"}


def script_head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"the migrations have {len(heads)} heads: {heads}; merge them"
    return heads[0]


def stored_revision(reg: Registry) -> list[str]:
    with reg.db.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def schema_differences(reg: Registry) -> list[Any]:
    with reg.db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": False}
        )
        return list(compare_metadata(context, Base.metadata))


def test_init_creates_the_head_revision(settings: Settings) -> None:
    with Registry.init(settings) as reg:
        assert stored_revision(reg) == [script_head()]
        assert reg.db.current_revision() == reg.db.head_revision() == script_head()
        with reg.db.engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= TABLES


def test_migrations_match_the_orm(settings: Settings) -> None:
    with Registry.init(settings) as reg:
        differences = schema_differences(reg)
    assert differences == [], (
        "the migrations and liveml.registry.schema disagree; add a migration:\n"
        + "\n".join(map(repr, differences))
    )


def test_init_twice_is_idempotent_and_keeps_data(settings: Settings, model_files: dict[str, Path]) -> None:
    with Registry.init(settings) as reg:
        reg.push("churn", model_files["logistic"], aliases=["production"])
        reg.push("churn", model_files["forest"])
    with Registry.init(settings) as reg:
        assert stored_revision(reg) == [script_head()]
        assert [v.version for v in reg.versions("churn")] == [1, 2]
        assert reg.get("churn").version == 1  # production still points at 1
        assert schema_differences(reg) == []
    with Registry.init(settings) as reg:
        assert stored_revision(reg) == [script_head()]


def test_opening_an_initialized_registry(settings: Settings, model_files: dict[str, Path]) -> None:
    with Registry.init(settings) as reg:
        reg.push("churn", model_files["logistic"])
    with Registry(settings) as reg:
        assert reg.db.current_revision() == script_head()
        assert [m.name for m in reg.models()] == ["churn"]
        assert reg.push("churn", model_files["forest"]).version == 2


def test_the_comparison_does_see_drift(settings: Settings) -> None:
    """Guard against a vacuous check: a column the ORM does not know is reported."""
    with Registry.init(settings) as reg:
        with reg.db.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE models ADD COLUMN stray VARCHAR(10)"))
        differences = schema_differences(reg)
    assert [(d[0], d[2], d[3].name) for d in differences] == [("remove_column", "models", "stray")]
