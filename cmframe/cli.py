"""The ``cmframe`` command line: one sub-command per server or job.

Each sub-command lives in the module of its stage as ``main(argv) -> int``; this
module only dispatches, so ``cmframe --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "gateway": ("cmframe.gateway", "run the embedded CM gateway on loopback"),
    "receive": ("cmframe.receiver", "run the status-report receiver on loopback"),
    "report": ("cmframe.report", "write a self-contained HTML campaign report"),
    "demo": ("cmframe.demo", "run the whole demo campaign on the embedded gateway"),
}


def _usage() -> str:
    lines = ["usage: cmframe COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'cmframe COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the ``cmframe`` command line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"cmframe: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
