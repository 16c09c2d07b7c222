"""svdscope's Dash front end: `create_app(AppConfig(...))` builds the dashboard."""
