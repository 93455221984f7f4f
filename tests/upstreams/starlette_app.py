"""Starlette upstream for the differential tests, run under uvicorn:

    PYTHONPATH=tests/upstreams:.tools/python \
        python3 -m uvicorn --host 127.0.0.1 --port $PORT --no-access-log starlette_app:app

Every method on every path gets a 200 JSON answer naming the handler that
Starlette's own routing picked: "protected" for /admin and what is under
it, "public" for anything else. The routes are declared the ordinary way
and the router keeps its defaults (redirect_slashes), so a path reads here
as it would in a real Starlette app; where the router answers a redirect
instead, that redirect goes out as it is.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

FRAMEWORK = "starlette"


def body(handler, scope):
    request = Request(scope)
    headers = request.headers
    # uvicorn keeps the path part of the request-target undecoded in
    # raw_path and the query apart in query_string; latin-1 maps each byte
    # to one character, so nothing is lost or rejected.
    raw_path = scope.get("raw_path")
    if raw_path is None:
        raw = None
    else:
        raw = raw_path.decode("latin-1")
        query = scope.get("query_string") or b""
        if query:
            raw += "?" + query.decode("latin-1")
    return {
        "handler": handler,
        "framework": FRAMEWORK,
        "path": scope.get("path"),
        "raw": raw,
        "x_user_id": headers.get("x-user-id"),
        "x_client_id": headers.get("x-client-id"),
        "x_forwarded_for": headers.get("x-forwarded-for"),
        "x_forwarded_proto": headers.get("x-forwarded-proto"),
        "x_forwarded_host": headers.get("x-forwarded-host"),
        "forwarded": headers.get("forwarded"),
        "x_request_id": headers.get("x-request-id"),
        "host": headers.get("host"),
    }


class Handler:
    """An ASGI endpoint. Route takes a class instance as a raw ASGI app and,
    given no methods, matches every method; a plain function endpoint would
    be limited to the methods listed (GET and HEAD if none), and any other
    method would get 405 before the handler ran."""

    def __init__(self, name):
        self.name = name

    async def __call__(self, scope, receive, send):
        response = JSONResponse(body(self.name, scope))
        await response(scope, receive, send)


protected = Handler("protected")
public = Handler("public")


async def not_routed(request, _exc):
    return JSONResponse(body("public", request.scope))


app = Starlette(
    routes=[
        Route("/admin", protected),
        Route("/admin/{rest:path}", protected),
        Route("/", public),
        Route("/{rest:path}", public),
    ],
    # Whatever falls through routing (a target such as "*" matches no
    # route) is still "not the protected handler".
    exception_handlers={404: not_routed, 405: not_routed},
)
