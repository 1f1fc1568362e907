"""The fixgw store: SQLAlchemy engine (:mod:`.db`), tables (:mod:`.schema`), Alembic migrations
(:mod:`.migrate`, ``migrations/``), the FIX session store (:mod:`.sessions`) and its order side
(:mod:`.orders`: events, order snapshots, fills, reported ExecIDs, id counters)."""
