"""The lab: relay hosts, a DNS host and a destination host on one Linux machine.

Each host is a network namespace with an overlay chroot and its own sshd, so
pyinfra deploys to it over SSH exactly as to production. See docs/lab.md.
"""
