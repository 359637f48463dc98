"""Helpers for Pilot tests: wait for a condition (never a fixed sleep), read the screen as text."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot


async def wait_for(
    pilot: Pilot, predicate: Callable[[], object], timeout: float = 10.0, what: str = ""
) -> None:
    """Run the app until ``predicate()`` holds; after ``timeout`` fail, showing the screen."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or predicate}\n"
                f"{screen_text(pilot.app)}"
            )
        await pilot.pause(0.02)


def screen_text(app: App) -> str:  # type: ignore[type-arg]
    """What a person sees on the current screen, as plain text."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
    )
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(update)
    return console.export_text()
