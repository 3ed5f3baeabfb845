"""A token service for the reference registry's `auth: token` mode, for tests.

Usage: token_server.py PORT KEY CERT USER PASSWORD ISSUER
Answers GET /token?service=…&scope=… with a JWT (RS256, the signing
certificate in `x5c`) granting the scopes asked for, after checking basic
auth; anonymous requests get a token with no access. Listens on loopback.
"""
import base64
import http.server
import json
import sys
import time
import urllib.parse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

port, key_path, cert_path, user, password, issuer = sys.argv[1:7]
key = open(key_path, "rb").read()
cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        header = self.headers.get("Authorization", "")
        authorized = False
        if header.startswith("Basic "):
            given = base64.b64decode(header[6:]).decode()
            if given != f"{user}:{password}":
                self.send_response(401)
                self.end_headers()
                return
            authorized = True
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name,
                           "actions": actions.split(",") if authorized else []})
        now = int(time.time())
        claims = {"iss": issuer, "sub": user if authorized else "", "aud": query.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": str(now), "access": access}
        token = jwt.encode(claims, key, algorithm="RS256", headers={"x5c": x5c})
        body = json.dumps({"token": token}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
