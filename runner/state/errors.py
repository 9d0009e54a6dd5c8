"""The state's one error, apart from the bucket modules so that importing it costs no boto3."""

from __future__ import annotations


class StateError(Exception):
    """The state cannot be read or written; the message says where and why."""
