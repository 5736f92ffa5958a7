"""relayops: run a paid SMTP relay service from a Git repository of validated YAML."""

__version__ = "0.1.0"
