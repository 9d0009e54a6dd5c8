"""The job model every backend speaks: statuses, requests, views and typed errors.

Neutral ground between the engine, the backends and the planner: it does no
I/O and imports none of them, so ``reconcile.plan`` can use it.
"""
