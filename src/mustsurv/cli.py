"""The ``mustsurv`` command: a small dispatcher over sub-commands (``mustsurv doctor --configfile study.yaml``, ``mustsurv predict BUNDLE --out scores.tsv ...``).

A sub-command is a module with ``add_arguments(parser)`` and ``run(args) -> exit code``, listed in
:data:`COMMANDS`; adding one is one entry here.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("mustsurv.doctor", "check a study's files, slides, weights, GPU and disk before any job runs"),
    "predict": ("mustsurv.deploy.cli", "score new patients with a model bundle (one TSV row per patient)"),
}
"""Sub-command name -> (module with ``add_arguments`` and ``run``, one-line help)."""


def build_parser() -> argparse.ArgumentParser:
    """Build the ``mustsurv`` parser with one sub-parser per command.

    Returns:
        The parser; ``args.command`` names the chosen sub-command.
    """
    parser = argparse.ArgumentParser(prog="mustsurv", description="MUST multimodal survival workflow tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (module, help_text) in COMMANDS.items():
        importlib.import_module(module).add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``mustsurv``.

    Args:
        argv: the arguments after the program name; None reads ``sys.argv``.

    Returns:
        The sub-command's exit code.
    """
    args = build_parser().parse_args(argv)
    return importlib.import_module(COMMANDS[args.command][0]).run(args)


if __name__ == "__main__":
    sys.exit(main())
