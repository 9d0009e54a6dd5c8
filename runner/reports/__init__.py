"""Reports: one view model per view, rendered through Jinja templates (JSON from the model)."""
