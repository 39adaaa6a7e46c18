"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from jupyter_sched.db import Database, alembic_config
from jupyter_sched.models import Base


def test_migrations_match_the_models(db_url: str) -> None:
    db = Database(db_url)
    db.upgrade()
    assert db.is_current()
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    db.upgrade()  # a second upgrade is a no-op
    db.dispose()


def test_downgrade_to_nothing_and_back(db_url: str) -> None:
    db = Database(db_url)
    db.upgrade()
    with db.engine.begin() as connection:
        config = alembic_config(db_url)
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert not db.is_current()
    db.upgrade()
    assert db.is_current()
    db.dispose()
