"""The Textual dashboard: the only package that imports textual. Start with ``app.make_app``."""
