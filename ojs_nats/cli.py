"""`ojs-nats`: the one module that wires processes together.

ojs-nats dev     the embedded default: a child nats-server (data in ./.data) plus the gateway
ojs-nats serve   the gateway alone, configured by environment variables (see README)
ojs-nats worker  a worker process running the handlers of MODULE:OBJECT (an ojs_nats.worker.Worker)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from ojs_nats import __version__, cpus
from ojs_nats.config import ConfigError, Settings
from ojs_nats.embedded import NatsServer, NatsServerError, free_port, port_is_free
from ojs_nats.worker import Worker, WorkerSettingsError
from ojs_nats.worker.runtime import THREAD_PREFIX

log = logging.getLogger("ojs_nats")


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _workers(settings: Settings) -> int:
    """Gateway processes: OJS_WORKERS, or one per CPU this process may use (the gateway is
    CPU-bound; see `cpus`)."""
    return settings.workers or cpus.usable_cpus()


def _run_gateway(settings: Settings) -> None:
    """Serve the app; uvicorn builds it in each worker process from the environment."""
    # uvicorn re-raises the SIGTERM it shut down for once it is done; the default action would
    # then kill the process (status 143) after a clean drain. Exit 0 instead.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "ojs_nats.api.app:create_served_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=_workers(settings) if _workers(settings) > 1 else None,
        log_level=settings.log_level,
        access_log=False,
        loop="auto",
        http="auto",
        timeout_graceful_shutdown=max(1, int(settings.drain_timeout_s)),
        lifespan="on",
    )


def _export(settings: Settings) -> None:
    """Pass settings to uvicorn's app factory (and worker processes) through the environment."""
    os.environ["NATS_URL"] = ",".join(settings.nats_urls)
    os.environ["OJS_HOST"] = settings.host
    os.environ["OJS_PORT"] = str(settings.port)
    os.environ["OJS_ENABLE_TEST_RESET"] = "1" if settings.enable_test_reset else "0"


def cmd_serve(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    settings = Settings.from_env(**overrides)
    _export(settings)
    _run_gateway(settings)
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    nats_port = args.nats_port or (4222 if port_is_free(4222) else free_port())
    server = NatsServer(data_dir, port=nats_port, name="ojs-nats-dev")
    try:
        server.start()
    except NatsServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        from_env = Settings.from_env()
        settings = Settings.from_env(
            nats_urls=(server.url,),
            host=args.host,
            port=args.port,
            enable_test_reset=args.enable_test_reset or from_env.enable_test_reset,
        )
        _export(settings)
        print(f"ojs-nats {__version__}: nats-server {server.url} (data in {data_dir})", flush=True)
        print(
            f"ojs-nats {__version__}: gateway on http://{settings.host}:{settings.port}  "
            f"(manifest: /ojs/manifest; Ctrl-C stops both)",
            flush=True,
        )
        _run_gateway(settings)
    finally:
        server.stop()
        print("ojs-nats: stopped", flush=True)
    return 0


def load_worker(target: str) -> Worker:
    """The `Worker` named by `MODULE:OBJECT` (OBJECT may be a factory returning one)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"expected MODULE:OBJECT, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules of the current directory
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    if not isinstance(found, Worker) and callable(found):
        found = found()
    if not isinstance(found, Worker):
        raise ValueError(f"{target} is not an ojs_nats.worker.Worker")
    return found


def cmd_worker(args: argparse.Namespace) -> int:
    try:
        worker = load_worker(args.target)
        worker.configure(
            urls=args.url,
            queues=args.queues,
            concurrency=args.concurrency,
            grace_period_s=args.grace_period,
            heartbeat_interval_s=args.heartbeat_interval,
            poll_interval_s=args.poll_interval,
            visibility_timeout_ms=args.visibility_timeout_ms,
        )
        if args.direct:
            # Imported here: an HTTP worker needs none of the server's code.
            from ojs_nats.direct import DirectTransport

            worker.use_transport(DirectTransport(Settings.from_env()))
    except (ImportError, AttributeError, ValueError, WorkerSettingsError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with asyncio.Runner(loop_factory=_fast_loop()) as runner:
        status = runner.run(worker.start(handle_signals=True))
    if any(t.name.startswith(THREAD_PREFIX) and t.is_alive() for t in threading.enumerate()):
        # A sync handler still runs in a thread after its job was handed back; the interpreter
        # would wait for it at exit. The job is elsewhere now: leave without it.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (it comes with uvicorn[standard]), as the gateway
    uses: the worker's HTTP calls and job tasks cost less CPU on it (S4: ~10% per job)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ojs-nats", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"ojs-nats {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run a local nats-server and the gateway")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8080)
    dev.add_argument("--data-dir", default=".data")
    dev.add_argument(
        "--nats-port",
        type=int,
        default=0,
        help="port of the child nats-server (default 4222, or a free one)",
    )
    dev.add_argument(
        "--enable-test-reset",
        action="store_true",
        help="expose POST /ojs/v1/admin/reset (wipes all state; tests only)",
    )
    dev.set_defaults(func=cmd_dev)

    serve = sub.add_parser("serve", help="run the gateway against NATS_URL")
    serve.add_argument("--host", default=None, help="overrides OJS_HOST")
    serve.add_argument("--port", type=int, default=None, help="overrides OJS_PORT")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser(
        "worker",
        help="run the handlers of MODULE:OBJECT against a gateway",
        description="Run a worker: fetch jobs from the gateway(s), run their handlers, report "
        "results. SIGTERM/SIGINT drain it (a second one exits at once). Flags override what "
        "the module passes to Worker(), which overrides OJS_* variables, then defaults.",
    )
    worker.add_argument("target", metavar="MODULE:OBJECT", help="e.g. myapp.jobs:worker")
    worker.add_argument("--url", default=None, help="gateway URL(s), comma-separated (OJS_URL)")
    worker.add_argument("--queues", default=None, help="comma-separated, highest priority first")
    worker.add_argument("--concurrency", type=int, default=None)
    worker.add_argument(
        "--grace-period", type=float, default=None, metavar="SECONDS", help="drain time on stop"
    )
    worker.add_argument("--heartbeat-interval", type=float, default=None, metavar="SECONDS")
    worker.add_argument("--poll-interval", type=float, default=None, metavar="SECONDS")
    worker.add_argument("--visibility-timeout-ms", type=int, default=None, metavar="MS")
    worker.add_argument(
        "--direct",
        action="store_true",
        help="talk to JetStream (NATS_URL) through the gateway's service layer instead of HTTP; "
        "needs the gateways' OJS_* settings and at least one running gateway (timers)",
    )
    worker.set_defaults(func=cmd_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = os.environ.get("OJS_LOG_LEVEL", "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
