"""`relayops audit`: the policy history from Git as field-level changes (docs/audit.md)."""
