"""A real OpenID provider for the tests: Authlib's authorisation server on Flask/werkzeug.

Authorisation code + PKCE (S256, required) + nonce, RS256 ID tokens, a userinfo endpoint
answering Pro Santé Connect's claims (``SubjectNameID``, ``SubjectRefPro``...). The user is
fixed per provider (``provider.user``) and consents automatically. ``tamper_id_token`` makes
the token endpoint alter the ID token's payload after signing, as an attacker in the middle
would.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

CLIENT_ID = "parcours-test"
CLIENT_SECRET = "provider-secret-0123456789"


@dataclass
class User:
    sub: str
    idnps: str
    given_name: str = "Jeanne"
    family_name: str = "Martin"

    def userinfo(self) -> dict[str, Any]:
        # Shape of Pro Santé Connect's UserInfo (ANS "Pro Santé Connect" documentation).
        return {
            "sub": self.sub,
            "SubjectNameID": self.idnps,
            "preferred_username": self.idnps,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "SubjectRefPro": {
                "codeCivilite": "MME",
                "exercices": [
                    {
                        "codeProfession": "10",
                        "codeCategorieProfessionnelle": "C",
                        "nomDExercice": self.family_name.upper(),
                        "prenomDExercice": self.given_name,
                        "activities": [{"codeModeExercice": "L", "raisonSocialeSite": "Cabinet"}],
                    }
                ],
            },
        }


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    user: User
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class Client:
    client_id = CLIENT_ID
    client_secret = CLIENT_SECRET

    def __init__(self, redirect_uris: list[str]) -> None:
        self.redirect_uris = redirect_uris

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in {"openid", "scope_all", "profile"})

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Token:
    access_token: str
    scope: str
    user: User


class Provider:
    def __init__(self, port: int) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "psc-test-1", "use": "sig"})
        self.user = User(sub="f:psc:ab12", idnps="810002909371")
        self.client = Client([])
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.token_requests: list[dict[str, str]] = []
        self.tamper_id_token = False
        self.app = self._build()
        self._server = make_server("127.0.0.1", port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(10)

    def _build(self) -> Flask:
        provider = self
        app = Flask("test-oidc-provider")

        class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
                "client_secret_basic",
                "client_secret_post",
            ]

            def save_authorization_code(self, code: str, req: Any) -> None:
                data = req.payload.data
                provider.codes[code] = Code(
                    code=code,
                    client_id=req.client.get_client_id(),
                    redirect_uri=req.payload.redirect_uri,
                    scope=req.payload.scope,
                    nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                    user=req.user,
                )

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                item = provider.codes.get(code)
                return item if item and item.client_id == client.get_client_id() else None

            def delete_authorization_code(self, authorization_code: Code) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Code) -> User:
                return authorization_code.user

        class PscOpenIDCode(OpenIDCode):
            def exists_nonce(self, nonce: str, req: Any) -> bool:
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider.key

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_encode_header(self, client: Client) -> dict[str, str]:
                return {"alg": "RS256", "kid": "psc-test-1"}

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                return {"iss": provider.issuer, "aud": [client.get_client_id()]}

            def generate_user_info(self, user: User, scope: str) -> UserInfo:
                return UserInfo(sub=user.sub)

        def query_client(client_id: str) -> Client | None:
            return provider.client if client_id == CLIENT_ID else None

        def save_token(token: dict[str, Any], req: Any) -> None:
            provider.tokens[token["access_token"]] = Token(
                token["access_token"], token.get("scope", ""), req.user
            )

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        server.register_grant(
            AuthorizationCodeGrant,
            [PscOpenIDCode(require_nonce=True), CodeChallenge(required=True)],
        )

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            return jsonify(
                {
                    "issuer": provider.issuer,
                    "authorization_endpoint": f"{provider.issuer}/authorize",
                    "token_endpoint": f"{provider.issuer}/token",
                    "userinfo_endpoint": f"{provider.issuer}/userinfo",
                    "jwks_uri": f"{provider.issuer}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": [
                        "client_secret_basic",
                        "client_secret_post",
                    ],
                }
            )

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify({"keys": [provider.key.as_dict(private=False)]})

        @app.get("/authorize")
        def authorize() -> Any:
            # Auto-consent: the test user is logged in at the provider.
            return server.create_authorization_response(grant_user=provider.user)

        @app.post("/token")
        def token() -> Any:
            provider.token_requests.append(dict(request.form))
            response = server.create_token_response()
            if provider.tamper_id_token and response.status_code == 200:
                body = json.loads(response.get_data())
                header, payload, signature = body["id_token"].split(".")
                claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
                claims["sub"] = "f:psc:someone-else"
                forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
                body["id_token"] = f"{header}.{forged.decode()}.{signature}"
                response.set_data(json.dumps(body))
            return response

        @app.get("/userinfo")
        def userinfo() -> Any:
            auth = request.headers.get("Authorization", "")
            item = provider.tokens.get(auth.removeprefix("Bearer ").strip())
            if item is None:
                return jsonify({"error": "invalid_token"}), 401
            return jsonify(item.user.userinfo())

        return app
