"""Drives the real origin and edge with Python's Authlib, a client library
independent of openid-client and of Gatehouse: discovery metadata is checked
by Authlib's RFC 8414 (or OpenID Connect discovery) model, the authorization
code + PKCE S256 flow, refresh, revocation and introspection are Authlib's
``OAuth2Session`` (requests), and id_tokens are validated by Authlib's
``CodeIDToken`` claims (nonce, at_hash) over joserfc, the JOSE library
Authlib itself uses.

Authlib has no DPoP (RFC 9449) support (its own source says so), so the DPoP
proofs are built here per RFC 9449 §4.2 with joserfc's ``jwt.encode`` and an
ES256 key from joserfc, and passed to Authlib's calls as the ``DPoP`` header.

The user's part — the origin's login and consent HTML forms — is filled in
with ``requests`` and a small cookie jar. Run by the e2e test ``clients``
(tests/tests/e2e/clients.rs) with the repository's ``.venv`` (scripts/setup).
Prints one line per proven step ("ok: …"), "skip: … not served yet" for an
OpenID Connect feature the origin's discovery does not advertise; exits
non-zero on the first failed assertion.

Environment:
  GH_ISSUER         the origin's issuer (http://127.0.0.1:PORT)
  GH_EDGE           the edge's URL (the tokens' audience)
  GH_CLIENT_ID      a public client (no secret, DPoP required) with the
                    authorization_code and refresh_token grants
  GH_REDIRECT_URI   its registered redirect URI
  GH_RS_ID, GH_RS_SECRET  a confidential client serving the edge's audience
                    (the resource server), for introspection
  GH_USER, GH_PASSWORD, GH_SUB   the user to sign in as, and its ``sub``
"""

import base64
import hashlib
import html
import os
import re
import secrets
import sys
import time
import warnings
from urllib.parse import parse_qs, urljoin, urlsplit

# The e2e stack listens on plain-HTTP loopback; Authlib refuses http:// URLs
# unless told otherwise.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
warnings.simplefilter("ignore", DeprecationWarning)

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session, OAuthError  # noqa: E402
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402
from authlib.oidc.discovery import OpenIDProviderMetadata  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import ECKey, KeySet  # noqa: E402
from joserfc.jws import JWSRegistry  # noqa: E402

NAME = "authlib"


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set")
    return value


ISSUER = env("GH_ISSUER")
EDGE = env("GH_EDGE")
CLIENT_ID = env("GH_CLIENT_ID")
REDIRECT_URI = env("GH_REDIRECT_URI")
RS_ID = env("GH_RS_ID")
RS_SECRET = env("GH_RS_SECRET")
USER = env("GH_USER")
PASSWORD = env("GH_PASSWORD")
SUB = env("GH_SUB")
TIMEOUT = 15


def ok(msg):
    print(f"{NAME}: ok: {msg}", flush=True)


def skip(msg):
    print(f"{NAME}: skip: {msg} (not served yet)", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ---- DPoP (RFC 9449 §4.2), with joserfc ----------------------------------------


class DPoP:
    """One DPoP key pair; ``proof`` signs a fresh proof for one request."""

    def __init__(self):
        self.key = ECKey.generate_key("P-256")
        self.jkt = self.key.thumbprint()
        self.nonce = None

    def proof(self, method, url, access_token=None):
        parts = urlsplit(url)
        claims = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": f"{parts.scheme}://{parts.netloc}{parts.path}",
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
        if self.nonce:
            claims["nonce"] = self.nonce
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.key.as_dict(private=False)}
        return jwt.encode(header, claims, self.key)


# ---- discovery ---------------------------------------------------------------------

probe = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=TIMEOUT)
OIDC = probe.status_code == 200
if OIDC:
    metadata = OpenIDProviderMetadata(probe.json())
else:
    resp = requests.get(f"{ISSUER}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
    check(resp.status_code == 200, f"RFC 8414 metadata: {resp.status_code}")
    metadata = AuthorizationServerMetadata(resp.json())
metadata.validate()
check(metadata["issuer"] == ISSUER, f"issuer {metadata['issuer']}")
check("S256" in metadata["code_challenge_methods_supported"], "PKCE S256 advertised")
check("ES256" in metadata.get("dpop_signing_alg_values_supported", []), "DPoP ES256 advertised")
ok(
    "discovery: OpenID Connect metadata validated by Authlib's OpenIDProviderMetadata"
    if OIDC
    else "discovery: RFC 8414 metadata validated by Authlib's AuthorizationServerMetadata "
    "(no OpenID configuration served yet)"
)
ID_TOKENS = OIDC and "openid" in (metadata.get("scopes_supported") or [])
USERINFO = OIDC and bool(metadata.get("userinfo_endpoint"))
TOKEN_URL = metadata["token_endpoint"]


# ---- the user's part: the origin's login and consent forms --------------------------


class Browser:
    """``requests`` with a cookie jar that keeps the origin's ``__Host-``
    cookies: they are Secure, which the standard jar withholds from
    plain-HTTP loopback."""

    def __init__(self):
        self.http = requests.Session()
        self.cookies = {}

    def _keep(self, resp):
        for line in resp.raw.headers.getlist("Set-Cookie"):
            name, _, value = line.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value

    def _headers(self):
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def get(self, url):
        resp = self.http.get(url, headers=self._headers(), allow_redirects=False, timeout=TIMEOUT)
        self._keep(resp)
        return resp

    def post(self, url, fields):
        resp = self.http.post(
            url, data=fields, headers=self._headers(), allow_redirects=False, timeout=TIMEOUT
        )
        self._keep(resp)
        return resp


def hidden(page, name):
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    check(m, f"hidden field {name} in the form")
    return html.unescape(m.group(1))


def sign_in(authorization_url):
    """Signs in and consents; returns the URL the origin redirects back to."""
    browser = Browser()
    page = browser.get(authorization_url)
    check(page.status_code == 200, f"the login page: {page.status_code}")
    login = browser.post(
        f"{ISSUER}/authorize/login",
        {
            "request": hidden(page.text, "request"),
            "csrf": hidden(page.text, "csrf"),
            "username": USER,
            "password": PASSWORD,
        },
    )
    check(login.status_code == 303, f"login: {login.status_code}")
    consent = browser.get(urljoin(ISSUER, login.headers["location"]))
    if consent.status_code == 200:
        consent = browser.post(
            f"{ISSUER}/authorize/consent",
            {
                "request": hidden(consent.text, "request"),
                "csrf": hidden(consent.text, "csrf"),
                "decision": "approve",
            },
        )
    check(consent.status_code == 303, f"consent: {consent.status_code}")
    back = consent.headers["location"]
    check(back.startswith(REDIRECT_URI), f"back to the client: {back}")
    return back


# ---- authorization code + PKCE S256 + DPoP (public client) --------------------------

dpop = DPoP()
session = OAuth2Session(
    CLIENT_ID,
    token_endpoint_auth_method="none",
    redirect_uri=REDIRECT_URI,
    scope="openid read" if ID_TOKENS else "read",
    code_challenge_method="S256",
)
verifier = generate_token(48)
nonce = generate_token(20) if ID_TOKENS else None
extra = {"nonce": nonce} if nonce else {}
# RFC 9449 §10: the code is bound to the DPoP key too.
url, state = session.create_authorization_url(
    metadata["authorization_endpoint"], code_verifier=verifier, dpop_jkt=dpop.jkt, **extra
)
back = sign_in(url)
check(parse_qs(urlsplit(back).query).get("iss") == [ISSUER], "RFC 9207 iss in the response")
token = session.fetch_token(
    TOKEN_URL,
    authorization_response=back,
    state=state,
    code_verifier=verifier,
    headers={"DPoP": dpop.proof("POST", TOKEN_URL)},
)
check(token["token_type"].lower() == "dpop", f"token_type {token['token_type']}")
check(token.get("refresh_token"), "a refresh token")
ok(
    "authorization code + PKCE S256 + DPoP (public client, dpop_jkt): "
    "DPoP-bound access and refresh tokens"
)


def validate_id_token(tok, expected_nonce):
    """Authlib's own id_token validation (as its OpenID client does it)."""
    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json())
    registry = JWSRegistry(
        algorithms=metadata.get("id_token_signing_alg_values_supported"),
        strict_check_header=False,
    )
    decoded = jwt.decode(tok["id_token"], keys, registry=registry)
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {"iss": {"values": [ISSUER]}},
        {"nonce": expected_nonce, "client_id": CLIENT_ID, "access_token": tok["access_token"]},
    )
    claims.validate(leeway=5)
    return claims


if ID_TOKENS:
    claims = validate_id_token(token, nonce)
    check(claims["sub"] == SUB, "id_token sub")
    check(claims.get("sid"), "id_token sid")
    check(claims.get("at_hash"), "id_token at_hash (Authlib checks it when present)")
    first_sid = claims["sid"]
    ok("id_token validated by Authlib's CodeIDToken (signature, iss, aud, exp, nonce, at_hash)")
else:
    skip("id_token with nonce and at_hash: no `openid` scope in discovery")


# ---- the edge -------------------------------------------------------------------------


def at_edge(access_token, key, path="/orders/7"):
    url = f"{EDGE}{path}"
    headers = {"Authorization": f"DPoP {access_token}"}
    if key is not None:
        headers["DPoP"] = key.proof("GET", url, access_token)
    resp = requests.get(url, headers=headers, timeout=TIMEOUT)
    if resp.status_code == 401 and key is not None and resp.headers.get("DPoP-Nonce"):
        key.nonce = resp.headers["DPoP-Nonce"]  # RFC 9449 §9: retry once with the nonce
        headers["DPoP"] = key.proof("GET", url, access_token)
        resp = requests.get(url, headers=headers, timeout=TIMEOUT)
    return resp


def until_edge_refuses(access_token, key, what):
    started = time.monotonic()
    while True:
        status = at_edge(access_token, key).status_code
        if status == 401:
            return int((time.monotonic() - started) * 1000)
        check(status == 200, f"{what}: unexpected edge answer {status}")
        check(time.monotonic() - started < 10, f"{what}: the edge still accepts it after 10 s")
        time.sleep(0.02)


resp = at_edge(token["access_token"], dpop)
check(resp.status_code == 200, f"edge with proof: {resp.status_code} {resp.text}")
identity = resp.json()["identity"]
check(identity["gatehouse-sub"] == SUB, f"upstream sub {identity}")
check(identity["gatehouse-client-id"] == CLIENT_ID, f"upstream client_id {identity}")
ok("edge: the DPoP-bound token with a proof → 200, the upstream saw the user's sub and client_id")
for scheme in ("Bearer", "DPoP"):
    bare = requests.get(
        f"{EDGE}/orders/7",
        headers={"Authorization": f"{scheme} {token['access_token']}"},
        timeout=TIMEOUT,
    )
    check(bare.status_code == 401, f"{scheme} without a proof: {bare.status_code}")
ok("edge: the DPoP-bound token without its proof → 401")

# ---- introspection (RFC 7662), by the resource server (confidential) ------------------

rs = OAuth2Session(RS_ID, RS_SECRET, token_endpoint_auth_method="client_secret_basic")


def introspect(tok):
    resp = rs.introspect_token(metadata["introspection_endpoint"], token=tok)
    check(resp.status_code == 200, f"introspection: {resp.status_code} {resp.text}")
    return resp.json()


info = introspect(token["access_token"])
check(info["active"] is True, f"active: {info}")
check(info["sub"] == SUB and info["client_id"] == CLIENT_ID, f"introspection: {info}")
check(info.get("cnf", {}).get("jkt") == dpop.jkt, f"cnf.jkt is the DPoP key: {info}")
ok("introspection (RFC 7662, client_secret_basic): active, sub, client_id, cnf.jkt = our key")

# ---- userinfo ----------------------------------------------------------------------------

if USERINFO:
    url = metadata["userinfo_endpoint"]
    resp = requests.get(
        url,
        headers={
            "Authorization": f"DPoP {token['access_token']}",
            "DPoP": dpop.proof("GET", url, token["access_token"]),
        },
        timeout=TIMEOUT,
    )
    check(resp.status_code == 200 and resp.json()["sub"] == SUB, f"userinfo: {resp.status_code}")
    bare = requests.get(
        url, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=TIMEOUT
    )
    check(bare.status_code == 401, f"userinfo without the proof: {bare.status_code}")
    ok("userinfo: the DPoP-bound token with its proof → the user; as Bearer → 401")
else:
    skip("userinfo (Bearer and DPoP): no userinfo_endpoint in discovery")

# ---- refresh with rotation; reuse revokes the family ----------------------------------------


def refresh(rt, key):
    return session.refresh_token(
        TOKEN_URL, refresh_token=rt, headers={"DPoP": key.proof("POST", TOKEN_URL)}
    )


def expect_invalid_grant(fn, what):
    try:
        fn()
    except OAuthError as e:
        check(e.error == "invalid_grant", f"{what}: {e.error}")
        return
    raise AssertionError(f"{what}: accepted")


old_rt = token["refresh_token"]
token2 = refresh(old_rt, dpop)
check(token2["refresh_token"] != old_rt, "the refresh token rotates")
check(token2["token_type"].lower() == "dpop", "still DPoP-bound")
check(at_edge(token2["access_token"], dpop).status_code == 200, "the edge accepts the new token")
ok("refresh_token (DPoP-bound public client): rotated refresh token, the edge accepts the new access token")
if ID_TOKENS:
    check(token2.get("id_token"), "the refresh yields an id_token")
    claims2 = validate_id_token(token2, None)
    check(claims2["sid"] == first_sid, "the same sid after refresh")
    ok("refresh: a new id_token for the same sid")
else:
    skip("refresh yielding an id_token with the same sid: no `openid` scope in discovery")
other = DPoP()
expect_invalid_grant(lambda: refresh(token2["refresh_token"], other), "another key's proof")
token2 = refresh(token2["refresh_token"], dpop)
ok(
    "refresh with a proof of another key → invalid_grant (the refresh token is bound to our "
    "key), and with ours it still works"
)
expect_invalid_grant(lambda: refresh(old_rt, dpop), "reuse of the rotated refresh token")
ok("reuse of the old refresh token → invalid_grant")
expect_invalid_grant(lambda: refresh(token2["refresh_token"], dpop), "the family's newest token")
ms = until_edge_refuses(token2["access_token"], dpop, "the family's access token")
check(introspect(token2["access_token"])["active"] is False, "introspection: inactive")
ok(
    "reuse revoked the family: its newest refresh token → invalid_grant, introspection "
    f"inactive, the edge refused its access token after {ms} ms"
)

# ---- revocation (RFC 7009) by the public client ------------------------------------------------

dpop3 = DPoP()
verifier = generate_token(48)
url, state = session.create_authorization_url(
    metadata["authorization_endpoint"], code_verifier=verifier, **({"nonce": nonce} if nonce else {})
)
token3 = session.fetch_token(
    TOKEN_URL,
    authorization_response=sign_in(url),
    state=state,
    code_verifier=verifier,
    headers={"DPoP": dpop3.proof("POST", TOKEN_URL)},
)
check(at_edge(token3["access_token"], dpop3).status_code == 200, "a second grant works at the edge")
resp = session.revoke_token(
    metadata["revocation_endpoint"], token=token3["access_token"], token_type_hint="access_token"
)
check(resp.status_code == 200, f"revocation: {resp.status_code}")
check(introspect(token3["access_token"])["active"] is False, "inactive after revocation")
ms = until_edge_refuses(token3["access_token"], dpop3, "the revoked access token")
ok(f"revoke_token (RFC 7009) of the access token: introspection inactive, the edge refused it after {ms} ms")
resp = session.revoke_token(
    metadata["revocation_endpoint"], token=token3["refresh_token"], token_type_hint="refresh_token"
)
check(resp.status_code == 200, f"revocation: {resp.status_code}")
expect_invalid_grant(lambda: refresh(token3["refresh_token"], dpop3), "the revoked refresh token")
ok("revoke_token of the refresh token: refreshing with it → invalid_grant")

print(f"{NAME}: all steps passed", flush=True)
sys.exit(0)
