"""Football actions: every change the football app makes to its tables lives in these modules.

Tasks, flow actions, the admin and the API call them; each function does its own transactions.
Pure rules live at the top of the app (``feed``, ``markets``, ``settlement``, ``texts``).

``ingestion``: the syncs that read API-Football (``run_sync`` and ``sync_*``).
``upserts``: writing one parsed feed page (leagues, fixtures, odds) in a fixed number of statements.
``bulk``: the bulk INSERT/UPDATE statements ingestion and settlement write with.
``api_account``: the configured API-Football client, the shared Redis, the quota the admin shows.
``settling``: settling fixtures, tickets and wallets, and telling bettors.
``wallet``: balances and the ledger (``book`` is the only writer of a balance).
``betting``: placing a ticket.
``catalogue``: what the bot offers (fixtures, markets, the fixture list).
``bot_flows``: loading the football flows shipped with the app.

The development data (sample fixtures from the fake feed) is ``devtools.seed``.
"""
