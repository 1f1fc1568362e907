"""The fixgw store: SQLAlchemy engine (:mod:`.db`), tables (:mod:`.schema`), Alembic migrations
(:mod:`.migrate`, ``migrations/``) and the FIX session store (:mod:`.sessions`)."""
