"""`relayops check`: prove the relay service from outside, as a receiving ISP or a customer.

One module per mechanism (dns, tls, smtp, dnsbl); each separates the probe (network I/O,
thin, injectable) from pure parse/judge functions that turn captured answers into
`CheckResult`s.
"""
