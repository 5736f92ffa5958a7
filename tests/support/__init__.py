"""What the tests share: real daemons on loopback (Postfix, Dovecot, NSD, Redis, the
policy daemon, an SMTP sink), a test PKI, and handles on the lab.

One module per harness, imported as `support.<module>` (tests/ is on sys.path); the
lab's pytest fixtures are the plugin `support.lab_fixtures`, loaded by tests/conftest.py.
"""
