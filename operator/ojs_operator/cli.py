"""`ojs-nats-operator`: `kopf run` with our handlers, JSON logs and the level of OJS_LOG_LEVEL.

Every argument is a `kopf run` option (`--standalone`, `--all-namespaces` or `--namespace=X`,
`--liveness=http://0.0.0.0:8081/healthz`, ...). The settings are checked before kopf starts,
so a bad variable fails at once with its name instead of in the first handler.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ojs_operator.settings import Settings, SettingsError

HANDLERS = "ojs_operator.handlers"
#: kopf's flags for OJS_LOG_LEVEL (kopf knows DEBUG, INFO and WARNING; error maps to quiet).
LEVEL_FLAGS = {"debug": ["--debug"], "info": [], "warning": ["--quiet"], "error": ["--quiet"]}


def kopf_args(argv: Sequence[str], settings: Settings) -> list[str]:
    """The `kopf run` command line for our arguments."""
    args = ["run", "--module", HANDLERS]
    if not any(a == "--log-format" or a.startswith("--log-format=") for a in argv):
        args.append("--log-format=json")  # structured: one JSON object per line
    if not any(a in ("-v", "--verbose", "-d", "--debug", "-q", "--quiet") for a in argv):
        args.extend(LEVEL_FLAGS[settings.log_level])
    return [*args, *argv]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"ojs-nats-operator: {exc}", file=sys.stderr)
        return 2
    import kopf.cli  # imported late: `--help` of a broken environment still says what is wrong

    args = kopf_args(sys.argv[1:] if argv is None else argv, settings)
    kopf.cli.main(args=args, prog_name="ojs-nats-operator", standalone_mode=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
