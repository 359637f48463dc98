"""The asyncio supervisor: the only place that starts processes."""
