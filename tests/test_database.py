"""The schema is built by migrations, and the migrations match the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from screening_node.audit import Database, record_event
from screening_node.audit.models import Base, Event


def test_migrations_build_the_model_schema(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'a.sqlite3'}")
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    Database(db.url)  # migrating twice is harmless


def test_events_carry_pseudonymous_study_key(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'a.sqlite3'}")
    with db.session() as s:
        record_event(s, "test.event", study_uid="1.2.3", detail={"n": 1})
    with db.session() as s:
        ev = s.query(Event).one()
        assert ev.study_key.startswith("S-") and "1.2.3" not in ev.study_key
