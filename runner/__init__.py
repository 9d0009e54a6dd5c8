"""batchctl: object-storage batch operation campaigns, the GitOps way."""

__version__ = "0.1.0"
