"""The ``livermets`` command line.

Each sub-command lives in ``livermets.commands.<name>`` and provides ``HELP`` (one line),
``configure(parser)`` and ``run(args, progress) -> int``. Modules are imported only when
their command runs, so ``livermets --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
import time
from typing import Optional, Sequence

from livermets import __version__
from livermets.errors import LiverMetsError
from livermets.progress import Cancelled, ProgressCallback

# command name -> (module, one-line help). Order is the order shown by --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("livermets.commands.demo", "build the sample case, run the whole pipeline, write the results"),
    "phantom": ("livermets.commands.phantom", "write a synthetic abdomen with ground truth (teaching phantom)"),
    "info": ("livermets.commands.info", "describe an image file or a DICOM folder"),
    "segment": ("livermets.commands.segment", "segment liver, lesions and vessels"),
    "measure": ("livermets.commands.measure", "measure lesions and liver from a result folder"),
    "plan": ("livermets.commands.plan", "virtual resection and future liver remnant"),
    "report": ("livermets.commands.report", "HTML / PDF report of a result folder"),
    "dicom-seg": ("livermets.commands.dicom_seg", "write the segmentation as DICOM SEG"),
    "export-models": ("livermets.commands.export_models", "STL / OBJ surface models for 3D printing"),
}


def available_commands() -> dict[str, tuple[str, str]]:
    """Commands whose implementation module is present in this installation."""
    return {name: spec for name, spec in COMMANDS.items() if importlib.util.find_spec(spec[0]) is not None}


class ConsoleProgress:
    """Prints ``[ 42%] message`` lines to stderr, at most every 0.5 s unless the message changes."""

    def __init__(self, stream=None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._last_message = ""
        self._last_time = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if self.quiet or (message == self._last_message and now - self._last_time < 0.5):
            return
        self._last_message, self._last_time = message, now
        print(f"[{100 * fraction:3.0f}%] {message}", file=self.stream, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livermets",
        description="Find, measure and plan around liver metastases on contrast-enhanced MRI and CT.")
    parser.add_argument("--version", action="version", version=f"livermets {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in available_commands().items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=getattr(module, "__doc__", None))
        module.configure(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    progress: ProgressCallback = ConsoleProgress(quiet=args.quiet)
    try:
        return int(args._module.run(args, progress) or 0)
    except LiverMetsError as error:
        if args.debug:
            raise
        print(f"livermets {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Cancelled:
        print(f"livermets {args.command}: cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `livermets info x | head`: the reader left, nothing to report
        return 0
    except KeyboardInterrupt:
        print(f"livermets {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # an unexpected failure: one line unless --debug
        if args.debug:
            raise
        print(f"livermets {args.command}: internal error: {type(error).__name__}: {error} "
              "(run again with --debug for the traceback, and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
