"""The policy daemon: Postfix's policy delegation protocol, quota and account decisions.

Layout (protocol, policy, storage and lifecycle apart):
`protocol.py` reads and writes the wire format, `rules.py` loads policy.json
and holds the pure decision functions, `store.py` the counter-store interface
and its in-memory core, `store_sqlite.py` / `store_redis.py` the two stores
(Redis: `redis_url.py` the URL forms, `resp.py` the wire client), `notify.py`
the warning mails, `server.py` ties them together, `cli.py` the `relayops
policyd` command. See docs/policyd.md.
"""
