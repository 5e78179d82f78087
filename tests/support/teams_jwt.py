"""A local Bot Framework token issuer: a generated RSA key served as JWKS behind an OpenID
configuration on loopback, and the tokens Teams would send (or forged ones) signed with it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://api.botframework.com"
KID = "tl-test-key"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    issuer: TeamsJwtIssuer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        issuer = self.server.issuer
        if self.path.endswith("/openidconfiguration"):
            body: dict[str, Any] = {"issuer": ISSUER, "jwks_uri": f"{issuer.base_url}/keys",
                                    "id_token_signing_alg_values_supported": ["RS256"]}
        elif self.path.endswith("/keys"):
            body = {"keys": [issuer.jwk]}
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class TeamsJwtIssuer:
    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not in the JWKS
        self.jwk: dict[str, Any] = {**json.loads(RSAAlgorithm.to_jwk(self._key.public_key())), "kid": KID,
                                    "use": "sig", "endorsements": ["msteams"]}
        self._server: _Server | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def openid_url(self) -> str:
        return f"{self.base_url}/v1/.well-known/openidconfiguration"

    def __enter__(self) -> TeamsJwtIssuer:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.issuer = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def token(self, *, service_url: str, audience: str | None = None, issuer: str = ISSUER,
              expires_in: int = 3600, signed_by_other_key: bool = False) -> str:
        now = int(time.time())
        claims = {"iss": issuer, "aud": audience or self.app_id, "serviceurl": service_url,
                  "nbf": now - 5, "iat": now - 5, "exp": now + expires_in}
        key = self.other_key if signed_by_other_key else self._key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})
