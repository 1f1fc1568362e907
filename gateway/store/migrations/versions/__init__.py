"""Alembic revisions of the fixgw store, oldest first (``rNNNN_<slug>.py``)."""
