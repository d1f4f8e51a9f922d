"""Verify the identity guichet sends to your application (Python, PyJWT).

Copy `verify_assertion` and `verify_signature` into your application; the command line below is
how the guichet test suite runs them:

    python verify.py --jwks-url https://app.example.gouv.fr/.guichet/jwks.json \
        --issuer https://app.example.gouv.fr --audience http://127.0.0.1:9000 \
        --hmac-key-env GUICHET_HMAC_KEY < request.json

request.json: {"method": "GET", "path": "/path?query", "headers": {"x-guichet-sub": "...", ...}}
Exit 0 and "OK sub=..." when both proofs hold, exit 1 and "REJECTED: reason" otherwise.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time

import jwt  # PyJWT, with its "crypto" extra for ES256 and EdDSA

ASSERTION_HEADER = "x-guichet-assertion"
SIGNATURE_HEADER = "x-guichet-signature"

_jwks_clients = {}


def verify_assertion(token, jwks_url, issuer, audience, leeway=5):
    """Checks the JWT's signature (key from the JWKS by kid), iss, aud, exp; returns its claims."""
    client = _jwks_clients.setdefault(jwks_url, jwt.PyJWKClient(jwks_url, cache_keys=True))
    key = client.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=["ES256", "EdDSA"],
        audience=audience,
        issuer=issuer,
        leeway=leeway,
        options={"require": ["iss", "aud", "exp", "iat", "sub"]},
    )


def verify_signature(method, path, headers, key, max_age=60, now=None):
    """Checks X-Guichet-Signature over the method, path, time and x-guichet-* headers.

    `headers` maps lower-case names to values as received. Raises ValueError when it fails.
    """
    value = headers.get(SIGNATURE_HEADER)
    if not value:
        raise ValueError("no signature header")
    fields = dict(part.strip().split("=", 1) for part in value.split(","))
    timestamp = int(fields["t"])
    now = int(time.time()) if now is None else now
    if abs(now - timestamp) > max_age:
        raise ValueError("signature too old")
    lines = sorted(
        (name, val)
        for name, val in headers.items()
        if name.startswith("x-guichet-") and name not in (ASSERTION_HEADER, SIGNATURE_HEADER)
    )
    canonical = "v1\n%s\n%s\n%d\n" % (method, path, timestamp)
    canonical += "".join("%s:%s\n" % line for line in lines)
    digest = hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    if not hmac.compare_digest(expected, fields.get("v1", "")):
        raise ValueError("signature mismatch")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jwks-url", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience", required=True)
    parser.add_argument("--hmac-key-env", required=True)
    parser.add_argument("--max-age", type=int, default=60)
    args = parser.parse_args()
    request = json.load(sys.stdin)
    headers = {name.lower(): value for name, value in request["headers"].items()}
    try:
        claims = verify_assertion(
            headers.get(ASSERTION_HEADER, ""), args.jwks_url, args.issuer, args.audience
        )
        verify_signature(
            request["method"],
            request["path"],
            headers,
            os.environ[args.hmac_key_env].encode("utf-8"),
            args.max_age,
        )
    except (jwt.PyJWTError, ValueError, KeyError) as error:
        print("REJECTED: %s" % error)
        return 1
    if claims["sub"] != headers.get("x-guichet-sub"):
        print("REJECTED: sub differs between the assertion and the header")
        return 1
    print("OK sub=%s" % claims["sub"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
