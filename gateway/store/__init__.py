"""The fixgw store: one writer thread with group commit (:mod:`.writer`) and the repositories on
it -- the FIX sessions (:mod:`.sessions`), the orders (:mod:`.orders`: events, snapshots, fills,
reported ExecIDs, id counters), this process as a node (:mod:`.nodes`) -- put together by
:class:`.store.SessionStore`; the records they keep (:mod:`.records`), the SQLAlchemy engine
(:mod:`.db`), tables (:mod:`.schema`) and Alembic migrations (:mod:`.migrate`,
``migrations/``)."""
