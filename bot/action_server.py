"""The private action server: rasa_sdk's app on loopback by default, refusing every call without the token.

Rasa sends the action endpoint's ``token`` (endpoints file) as the query parameter ``token`` with every call;
this server compares it in constant time and answers 401 to anything else. Only ``/health`` is open, and it
reveals nothing. There is no "open" mode: without ``ACTION_SERVER_TOKEN`` the server refuses to start
(``bot run`` generates a token per run in local mode and hands it to both processes).

Run it with ``python -m bot.action_server --port 5055 [--host 127.0.0.1]``.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import sys
from typing import Optional, Sequence

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger("bot.action_server")  # also when run as __main__

TOKEN_PARAMETER = "token"  # rasa.utils.endpoints.EndpointConfig's default token_name
OPEN_PATHS = frozenset({"/health"})
DEFAULT_PORT = 5055
ACTIONS_PACKAGE = "actions"


def token_is_valid(presented: Optional[str], expected: str) -> bool:
    """Whether ``presented`` is the shared secret, compared in constant time.

    Args:
        presented: The token the caller sent, if any.
        expected: The configured token; an empty one never matches.

    Returns:
        True only for a non-empty exact match.
    """
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def create_app(token: str, actions_package: str = ACTIONS_PACKAGE) -> Sanic:
    """The rasa_sdk Sanic app with the token check in front of every route but ``/health``.

    Args:
        token: The shared secret Rasa sends with each call.
        actions_package: The package the custom actions are registered from.

    Returns:
        The app, ready to run.

    Raises:
        ValueError: If ``token`` is empty (the server would be open).
    """
    from rasa_sdk.endpoint import create_app as create_sdk_app

    if not token:
        raise ValueError("the action server needs a token; it never runs open")
    app = create_sdk_app(actions_package, cors_origins=[])  # internal: no browser may call it

    @app.middleware("request")
    async def require_token(request: Request) -> Optional[HTTPResponse]:
        if request.path in OPEN_PATHS:
            return None
        if token_is_valid(request.args.get(TOKEN_PARAMETER), token):
            return None
        logger.warning("refused %s %s from %s: missing or wrong token", request.method, request.path, request.ip)
        return response.json({"error": "unauthorized"}, status=401)

    return app


def serve(*, host: str, port: int, token: str, actions_package: str = ACTIONS_PACKAGE) -> None:
    """Run the action server until SIGTERM or SIGINT.

    Args:
        host: The address to listen on (loopback unless a deployment needs another).
        port: The port to listen on.
        token: The shared secret.
        actions_package: The package the custom actions are registered from.
    """
    app = create_app(token, actions_package)
    logger.info("Action server listening on http://%s:%s (token required)", host, port)
    app.run(host=host, port=port, workers=1, access_log=False, motd=False)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: check the wording, read the token, serve.

    Args:
        argv: Command line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status (non-zero when the server refused to start).
    """
    from bot.settings import get_settings
    from bot.startup import exit_with_parent, preflight

    exit_with_parent()
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m bot.action_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=settings.action_server_host, help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--actions", default=ACTIONS_PACKAGE, help="package with the custom actions")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not preflight():
        return 1
    token = settings.action_server_token.get_secret_value() if settings.action_server_token else ""
    if not token:
        print("error: ACTION_SERVER_TOKEN is not set; the action server never runs open", file=sys.stderr)
        return 2
    serve(host=args.host, port=args.port, token=token, actions_package=args.actions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
