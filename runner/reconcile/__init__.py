"""Reconciling specs with the jobs that exist: observe, plan (pure), apply, the controller."""
