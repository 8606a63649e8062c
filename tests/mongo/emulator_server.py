"""Serve the mongoeco MongoDB emulator over the wire protocol until SIGTERM.

Runs under mongoeco's own Python 3.13 venv (see ``emulator.sh``), never under
the project's. Test tooling only: production talks to a real MongoDB.

    python emulator_server.py --host 127.0.0.1 --port 8417 [--engine memory|sqlite PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from mongoeco.engines.memory import MemoryEngine
from mongoeco.engines.sqlite import SQLiteEngine
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

# Real MongoDB accepts ``buildinfo`` as an alias of ``buildInfo``; PyMongo's
# ``server_info()`` (which django-mongodb-backend calls to learn the server
# version) sends the lowercase spelling, and mongoeco 4.11 only knows the
# camelCase one. Renaming it here keeps the difference inside the emulator.
_COMMAND_ALIASES = {"buildinfo": "buildInfo"}


def _with_command_aliases(build_request_context):
    def build(body, **kwargs):
        if body:
            first = next(iter(body))
            if first in _COMMAND_ALIASES:
                body = {(_COMMAND_ALIASES[k] if k == first else k): v for k, v in body.items()}
        return build_request_context(body, **kwargs)

    return build


async def serve(host: str, port: int, engine_name: str, sqlite_path: str | None) -> None:
    engine = MemoryEngine() if engine_name == "memory" else SQLiteEngine(sqlite_path)
    proxy = AsyncMongoEcoProxyServer(engine=engine, host=host, port=port)
    executor = proxy._executor
    executor._build_request_context = _with_command_aliases(executor._build_request_context)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    address = await proxy.start()
    print(f"mongoeco listening on {address.uri}", flush=True)
    try:
        await stop.wait()
    finally:
        await proxy.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--engine", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--sqlite-path", default=None)
    args = parser.parse_args()
    if args.engine == "sqlite" and not args.sqlite_path:
        parser.error("--engine sqlite needs --sqlite-path")
    asyncio.run(serve(args.host, args.port, args.engine, args.sqlite_path))


if __name__ == "__main__":
    main()
