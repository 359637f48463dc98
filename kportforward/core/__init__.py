"""The pure domain: no asyncio tasks, no textual, no kubernetes."""
