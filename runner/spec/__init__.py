"""Desired state: the resource models, YAML loading with located errors, graph checks.

Nothing in this package does I/O; ``runner.jobsdir`` reads the files.
"""
