#!/usr/bin/env python3
"""A client of Weir's assignment flow (source document 004), Python standard library only.

1. Ask the gateway which server to use:   GET {gateway}/.well-known/weir/assign?path=PATH
2. Send the application's requests to that server directly (its public_url), with the pin
   (the assignment's token, as its cookie) when there is one.
3. Every --test-every ms, send the server a test message (GET /health); an answer means the
   connection works.
4. When a test message or a request fails, ask again with failed=ID (and the pin): Weir answers
   with another server, never that one again for this client for a while, and probes it at once.
   A request that failed is sent again to the new server, so none is lost.

Against `make run` (gateway on 127.0.0.1:8080, demo-1..3 on 127.0.0.1:9001-9003):

    python3 examples/assign-client.py --count 200 --interval 50
    # kill one of the demo backends while it runs: the client moves on to another one

Every event is printed as one JSON line; the last one ("done") sums up. The loop is bounded by
--count (requests) and --seconds (wall time). Exit status 0 when every request was answered.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, "t": round(time.monotonic(), 3), **fields}), flush=True)


class Assigned:
    """The server Weir assigned: its id, where to reach it, and the pin to present."""

    def __init__(self, doc: dict):
        self.id = doc["id"]
        self.url = doc["public_url"].rstrip("/")
        self.cookie = f"{doc['cookie']}={doc['token']}" if doc.get("token") and doc.get("cookie") else None


def get(url: str, cookie: str | None, timeout: float) -> tuple[int, bytes]:
    """GET `url`; (status, body). Raises OSError when the server does not answer."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def assign(gateway: str, path: str, failed: Assigned | None, timeout: float) -> Assigned:
    """Asks the gateway for a server, reporting `failed` (and presenting its pin) when given."""
    query = {"path": path}
    if failed is not None:
        query["failed"] = failed.id
    status, body = get(f"{gateway}/.well-known/weir/assign?{urllib.parse.urlencode(query)}",
                       failed.cookie if failed else None, timeout)
    if status != 200:
        raise OSError(f"assign answered {status}: {body[:200]!r}")
    server = Assigned(json.loads(body))
    emit("assigned", server=server.id, url=server.url, reported=failed.id if failed else None)
    return server


def answers(server: Assigned, path: str, timeout: float) -> bool:
    """One request or test message to the server itself: True when it answered 2xx/3xx."""
    try:
        status, _ = get(server.url + path, server.cookie, timeout)
        return status < 400
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    parser.add_argument("--path", default="/", help="the application path to be assigned a server for")
    parser.add_argument("--count", type=int, default=100, help="requests to send (bound)")
    parser.add_argument("--seconds", type=float, default=60, help="wall-time bound")
    parser.add_argument("--interval", type=int, default=100, help="ms between requests")
    parser.add_argument("--test-every", type=int, default=250, help="ms between test messages")
    parser.add_argument("--test-path", default="/health")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for an answer")
    parser.add_argument("--reassign-limit", type=int, default=10, help="most re-assignments (bound)")
    args = parser.parse_args()

    deadline = time.monotonic() + args.seconds
    server = assign(args.gateway, args.path, None, args.timeout)
    answered = failed_tests = failed_requests = reassigned = 0
    next_test = time.monotonic() + args.test_every / 1000
    n = 0
    while n < args.count and time.monotonic() < deadline:
        failure = None
        if time.monotonic() >= next_test:
            next_test = time.monotonic() + args.test_every / 1000
            ok = answers(server, args.test_path, args.timeout)
            emit("test", server=server.id, ok=ok)
            if not ok:
                failed_tests += 1
                failure = "test"
        if failure is None:
            if answers(server, f"{args.path}?n={n}", args.timeout):
                emit("request", n=n, server=server.id)
                answered += 1
                n += 1
                time.sleep(args.interval / 1000)
                continue
            failed_requests += 1
            failure = "request"
        # The server stopped answering: ask for another one (the request is sent again next turn).
        if reassigned >= args.reassign_limit:
            emit("gave_up", server=server.id, why=failure)
            break
        reassigned += 1
        try:
            server = assign(args.gateway, args.path, server, args.timeout)
        except OSError as error:
            emit("assign_failed", why=str(error))
            time.sleep(args.interval / 1000)
    emit("done", server=server.id, answered=answered, lost=args.count - answered, failed_tests=failed_tests,
         failed_requests=failed_requests, reassigned=reassigned)
    return 0 if answered == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
