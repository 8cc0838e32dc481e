"""Audit database: models, migrations, events."""

from screening_node.audit.db import Database
from screening_node.audit.events import record_event, study_key

__all__ = ["Database", "record_event", "study_key"]
