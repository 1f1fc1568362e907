"""Market data: the venues' books and trades as their public feeds give them (each connector
checks its feed's integrity with the venue's own rules and resynchronises), a consolidated
view across the venues that list an instrument, and the FIX MarketDataRequest (V) answered
with snapshots (W), incremental refreshes (X) or a reject (Y).

``book.py`` keeps one venue's book of one instrument; ``feeds.py`` runs the feeds that someone
watches and tells the watchers what changed; ``requests.py`` is the FIX side: subscriptions,
what each client was sent, and conflation (a client that reads slowly gets the latest state
of each level, never a queue without bound).
"""
