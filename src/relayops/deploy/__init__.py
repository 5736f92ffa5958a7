"""Deploy compiled host configurations onto relay hosts (pyinfra) and run the lab demo.

Pure decisions (what changed, which service reloads, certificates, wheel cache)
live here; the pyinfra deploy in `deploys/relay.py` only orders the operations.
"""
