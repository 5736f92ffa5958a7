"""`python -m relayops` is the `relayops` command."""

from relayops.cli import main

main()
