"""Alembic environment of the fixgw store (``env.py`` and ``versions/``).

Users never need an ``alembic.ini``: :func:`gateway.store.migrate.upgrade` builds the Alembic
configuration in code and points it at this directory. To add a revision after changing
:mod:`gateway.store.schema`::

    .venv/bin/python -m gateway.store.migrate revision "add orders table" --url sqlite:///x.db
"""
