"""Warm-up of dedicated IPs: where each IP stands, what receivers said, when it may advance."""
