"""Automatic back-off: receivers' "slow down" replies pause a sending IP × ISP class."""
