"""Helpers shared by the sticky-transaction, redirect-mode and discovery tests (not a test module).

Routes with `[[route.sticky]]` tables are rendered here and handed to the `gateway` factory as
`extra` (with `routes=[]`), so conftest's renderer stays unchanged.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time

from conftest import ADMIN_AUTH, toml_value

SECRET = "e2e-sticky-secret-0123456789abcdefghijklmnop"   # >= 32 characters
PIN = "weir_pin"
BANKING = {"path": "/banking/*", "complete": ["/banking/logout", "/banking/receipt/*"], "idle_timeout": "20m"}


def routes_toml(routes: list) -> str:
    """[[route]] tables; a route's "sticky" key is a list of [[route.sticky]] tables."""
    lines = []
    for r in routes:
        r = dict(r)
        sticky = r.pop("sticky", [])
        lines += ["[[route]]"] + [f"{k} = {toml_value(v)}" for k, v in r.items()]
        for rule in sticky:
            lines += ["[[route.sticky]]"] + [f"{k} = {toml_value(v)}" for k, v in rule.items()]
        lines.append("")
    return "\n".join(lines)


def sticky_extra(routes: list, sticky: dict | None = None, discovery: dict | None = None) -> str:
    """`extra` text: the routes, then optional [sticky] and [discovery] tables."""
    text = routes_toml(routes)
    for name, table in (("sticky", sticky), ("discovery", discovery)):
        if table is not None:
            text += f"\n[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())
    return text


def start_sticky_gateway(gateway, tmp_path, backends, *, rules=(BANKING,), sticky=None, name="gw", **kwargs):
    """A gateway whose one route "/" to pool "p" carries `rules`; secret = SECRET unless `sticky` says
    otherwise; state_dir in tmp_path."""
    state = tmp_path / f"state-{name}"
    global_extra = {"state_dir": str(state)}
    global_extra.update(kwargs.pop("global_extra", {}))
    routes = kwargs.pop("sticky_routes", None) or [{"name": "all", "pool": "p", "path": "/", "sticky": list(rules)}]
    return gateway(pools={"p": backends}, routes=[], global_extra=global_extra,
                   extra=sticky_extra(routes, {"secret": SECRET} if sticky is None else sticky,
                                      kwargs.pop("discovery", None)), **kwargs)


# --------------------------------------------------------------------------------------------
# Admin


def admin_request(gw, method: str, path: str, timeout: float = 5.0):
    assert gw.admin != "off", "gateway started without an admin listener"
    host, _, port = gw.admin.rpartition(":")
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    try:
        conn.request(method, path, headers=ADMIN_AUTH)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def admin_json(gw, method: str, path: str) -> dict:
    status, body = admin_request(gw, method, path)
    assert status == 200, (method, path, status, body)
    return json.loads(body)


def register(gw, detail: bool = False) -> dict:
    return admin_json(gw, "GET", "/servers?detail=1" if detail else "/servers")


def pinned_sessions(gw) -> dict:
    return {s["id"]: s["pinned_sessions"] for s in register(gw)["servers"]}


# --------------------------------------------------------------------------------------------
# Pin tokens


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_parts(token: str) -> dict:
    """The fields of `1.<b64url id>.<session>.<expiry>.<mac>`."""
    parts = token.split(".")
    assert len(parts) == 5 and parts[0] == "1", f"not a version-1 pin token: {token!r}"
    return {"id": b64url_decode(parts[1]).decode(), "session": parts[2], "expires": int(parts[3]), "mac": parts[4]}


def forge_token(server_id: str, session: str, expires: int, scope: str = "/banking/*", secret: str = SECRET) -> str:
    """A pin token signed as documented: HMAC-SHA256(secret, body + "|" + scope), first 16 bytes."""
    body = f"1.{b64url(server_id.encode())}.{session}.{expires}"
    mac = hmac.new(secret.encode(), (body + "|" + scope).encode(), hashlib.sha256).digest()[:16]
    return body + "." + b64url(mac)


def set_cookies(headers: list, name: str = PIN) -> list:
    """The Set-Cookie values (whole field values) that set cookie `name`."""
    return [v for k, v in headers if k.lower() == "set-cookie" and v.split("=", 1)[0].strip() == name]


def pin_from(headers: list, name: str = PIN) -> str | None:
    """The pin token set by a response (None when none; "" when it is cleared)."""
    values = set_cookies(headers, name)
    assert len(values) <= 1, f"more than one Set-Cookie for {name}: {values}"
    if not values:
        return None
    return values[0].split(";", 1)[0].split("=", 1)[1]


def cookie_attributes(value: str) -> dict:
    attrs = {}
    for part in value.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        attrs[k.lower()] = v
    return attrs


def now() -> int:
    return int(time.time())
