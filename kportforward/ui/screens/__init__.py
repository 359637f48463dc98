"""Screens of the dashboard: the table, a forward's details, its live log, the help."""
