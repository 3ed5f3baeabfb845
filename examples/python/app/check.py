"""Proves the interpreter, its TLS stack and the CA bundle work, offline."""
import json
import ssl
import sqlite3
import zlib

context = ssl.create_default_context()
print(ssl.OPENSSL_VERSION)
print(json.dumps({
    "ca_certificates": len(context.get_ca_certs()) > 100,
    "sqlite": sqlite3.sqlite_version,
    "zlib": zlib.ZLIB_VERSION,
}, sort_keys=True))
