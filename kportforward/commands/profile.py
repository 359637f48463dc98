"""``kportforward profile``."""

from __future__ import annotations

import argparse

from kportforward.profiling import options_from_args, print_summary, profile


def main(args: argparse.Namespace) -> int:
    """Validate, profile, print the summary."""
    opts = options_from_args(args)
    summary = profile(opts)
    print_summary(summary, opts.output)
    return 0
