"""One instance per user and config, and a control socket any number of clients talk to.

- :mod:`.paths` — where the lock and the socket live; the lock that makes one instance.
- :mod:`.instance` — ``claim()`` the lock (refuse, or replace the owner) and ``serve()``.
- :mod:`.codec` — the newline-delimited JSON protocol: requests, replies, events, statuses.
- :mod:`.fanout` — one supervisor event stream shared by the local UI/printer and every client.
- :mod:`.server` — the socket server the running instance serves (asyncio).
- :mod:`.client` — a small blocking client for ``status``/``wait``/``start``… (no asyncio).
- :mod:`.remote` — ``RemoteSupervisor``: the supervisor protocol over the socket (for attach).

Nothing here imports textual or kubernetes; the client side imports nothing of the supervisor.
"""
