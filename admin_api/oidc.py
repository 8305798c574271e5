"""The OpenID Connect relying party: discovery, the token endpoint, and ID-token verification.

Follows OpenID Connect Core 1.0 and Discovery 1.0, RFC 7636 (PKCE) and RFC 8628 (device grant).
The JWT and JWKS work is PyJWT's (``jwt.decode``, ``PyJWKClient``); this module only decides what
is accepted:

- the discovery document must name the configured issuer exactly (Discovery 1.0 §4.3);
- signatures: asymmetric algorithms the provider announces, never ``none`` nor HS* (an HMAC keyed
  with the client secret would let anyone holding that secret mint identities);
- keys: the provider's JWKS, cached for five minutes; a ``kid`` not in the cache refetches the set
  once (rotation), at most once per ``JWKS_COOLDOWN_SECONDS`` after the last fetch (PyJWT >= 2.14:
  tokens with made-up ``kid``s cannot make wio hammer the provider), and a ``kid`` still unknown
  after that is refused; a token without ``kid`` is accepted only while the provider publishes a
  single signing key;
- claims: ``iss`` equal to the issuer, ``aud`` containing the client id (and ``azp`` equal to it when
  there are several audiences), ``exp``/``iat`` present and not expired (30 s leeway for clock skew),
  and, for the authorization-code flow, ``nonce`` equal to the one this login stored.
"""
from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from foundation.settings import Settings

__all__ = ["OidcClient", "OidcError", "ProviderUnavailable", "Discovery", "ACCEPTED_ALGORITHMS"]

ACCEPTED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                                 "EdDSA"})
LEEWAY_SECONDS = 30
JWKS_LIFESPAN_SECONDS = 300
JWKS_COOLDOWN_SECONDS = 30.0
_TIMEOUT = aiohttp.ClientTimeout(total=15)


class OidcError(Exception):
    """The provider refused, or what it (or a caller) presented is not acceptable."""


class ProviderUnavailable(Exception):
    """The provider could not be reached or answered nonsense: a 503, never a login."""


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    device_authorization_endpoint: str | None
    algorithms: frozenset[str]


class OidcClient:
    def __init__(self, settings: Settings, http: aiohttp.ClientSession, *,
                 jwks_cooldown: float = JWKS_COOLDOWN_SECONDS):
        assert settings.oidc_issuer and settings.oidc_client_id
        self.issuer, self.client_id = settings.oidc_issuer, settings.oidc_client_id
        self.client_secret = settings.oidc_client_secret
        self.http = http
        self._jwks_cooldown = jwks_cooldown
        self._discovery: Discovery | None = None
        self._jwks: jwt.PyJWKClient | None = None
        self._lock = asyncio.Lock()

    async def discovery(self) -> Discovery:
        async with self._lock:
            if self._discovery is None:
                self._discovery = await self._discover()
                self._jwks = jwt.PyJWKClient(self._discovery.jwks_uri, cache_jwk_set=True, lifespan=JWKS_LIFESPAN_SECONDS,
                                             timeout=10, cooldown_duration=self._jwks_cooldown)
            return self._discovery

    async def _discover(self) -> Discovery:
        doc = await self._json("GET", self.issuer + "/.well-known/openid-configuration")
        if doc.get("issuer") != self.issuer:
            raise ProviderUnavailable(f"the provider's discovery document names issuer {doc.get('issuer')!r}, "
                                      f"not the configured {self.issuer!r}")
        try:
            endpoints = {name: str(doc[name]) for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")}
        except KeyError as exc:
            raise ProviderUnavailable(f"the provider's discovery document lacks {exc.args[0]}") from None
        announced = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = ACCEPTED_ALGORITHMS.intersection(announced if isinstance(announced, list) else [])
        if not algorithms:
            raise ProviderUnavailable(f"the provider signs ID tokens only with {announced}, none of which wio accepts")
        device = doc.get("device_authorization_endpoint")
        return Discovery(issuer=self.issuer, device_authorization_endpoint=str(device) if device else None,
                         algorithms=frozenset(algorithms), **endpoints)

    async def _json(self, method: str, url: str, form: dict[str, str] | None = None) -> dict[str, Any]:
        """One call to the provider; its JSON object, or OidcError (4xx) / ProviderUnavailable (anything else)."""
        auth = aiohttp.BasicAuth(self.client_id, self.client_secret) if form is not None and self.client_secret \
            else None
        if form is not None and auth is None:
            form = {**form, "client_id": self.client_id}
        try:
            async with self.http.request(method, url, data=form, auth=auth, timeout=_TIMEOUT,
                                         headers={"Accept": "application/json"}) as resp:
                body = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise ProviderUnavailable(f"the identity provider is unreachable ({type(exc).__name__})") from None
        if not isinstance(body, dict):
            raise ProviderUnavailable("the identity provider answered something other than a JSON object")
        if 400 <= status < 500:
            raise OidcError(str(body.get("error") or f"HTTP {status}"), str(body.get("error_description") or ""))
        if status != 200:
            raise ProviderUnavailable(f"the identity provider answered HTTP {status}")
        return body

    async def token(self, form: dict[str, str]) -> dict[str, Any]:
        """A token-endpoint request (client authentication added); the provider's JSON answer."""
        return await self._json("POST", (await self.discovery()).token_endpoint, form)

    async def device_authorization(self, scope: str) -> dict[str, Any] | None:
        """Start a device authorization (RFC 8628 §3.1); None when the provider does not offer the grant."""
        endpoint = (await self.discovery()).device_authorization_endpoint
        return None if endpoint is None else await self._json("POST", endpoint, {"scope": scope})

    def _signing_key(self, kid: str | None) -> jwt.PyJWK:
        """The key for ``kid``; a token may omit it only while the provider publishes one key (Core 1.0 §10.1)."""
        assert self._jwks is not None
        if kid is not None:
            return self._jwks.get_signing_key(kid)
        keys = self._jwks.get_signing_keys()
        if len(keys) != 1:
            raise jwt.PyJWKClientError("the ID token names no key (kid) and the provider publishes several")
        return keys[0]

    async def verify_id_token(self, token: str, *, nonce: str | None) -> dict[str, Any]:
        """The verified claims of an ID token from this provider for this client (see the module docstring)."""
        discovery = await self.discovery()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise OidcError("invalid_token", "the ID token is not a JWT") from None
        alg = header.get("alg")
        if alg not in discovery.algorithms:
            raise OidcError("invalid_token", f"ID tokens signed with {alg!r} are not accepted")
        try:
            key = await asyncio.to_thread(self._signing_key, header.get("kid"))
        except jwt.PyJWKClientConnectionError:
            raise ProviderUnavailable("the provider's key set (JWKS) is unreachable") from None
        except jwt.PyJWTError:
            raise OidcError("invalid_token", "the ID token's key (kid) is not in the provider's key set") from None
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=self.client_id, issuer=self.issuer,
                                leeway=LEEWAY_SECONDS, options={"require": ["iss", "sub", "aud", "exp", "iat"]})
        except jwt.ExpiredSignatureError:
            raise OidcError("invalid_token", "the ID token has expired") from None
        except jwt.InvalidAudienceError:
            raise OidcError("invalid_token", "the ID token was issued for another client (audience)") from None
        except jwt.InvalidIssuerError:
            raise OidcError("invalid_token", "the ID token comes from another issuer") from None
        except jwt.PyJWTError as exc:
            raise OidcError("invalid_token", f"the ID token is invalid: {exc}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise OidcError("invalid_token", "the ID token was authorized for another party (azp)")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise OidcError("invalid_token", "the ID token has no subject")
        if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise OidcError("invalid_token", "the ID token's nonce does not match this login (replayed?)")
        return claims
