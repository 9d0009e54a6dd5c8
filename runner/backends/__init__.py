"""Actual state: the JobService protocol and one module per backend (local, aws, cos)."""
