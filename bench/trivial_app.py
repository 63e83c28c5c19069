"""The bare HTTP ceiling: a trivial Starlette POST handler, uvicorn with httptools and uvloop.

It reads the whole body and answers 200 with an empty body, which is everything the real ingest
endpoint must do on the HTTP side and nothing more. One worker.
Run: `python bench/trivial_app.py --port P`.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def ingest(request: Request) -> Response:
    await request.body()
    return Response(status_code=200)


async def healthz(request: Request) -> Response:
    return Response(b"ok", media_type="text/plain")


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/caliper", ingest, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
