"""Steps of deploys/relay.py, one module per concern; each emits pyinfra operations."""
