"""One module per view (layout() + register(app, services)) and the page router."""
