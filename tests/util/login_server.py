"""Serves the current folder on loopback, every request behind one HTTP
basic login (401 without it): an apt mirror behind a login, for strata's
tests.

    python3 login_server.py PORT USER:PASSWORD
"""

import base64
import functools
import http.server
import sys

port, login = int(sys.argv[1]), sys.argv[2]
expected = "Basic " + base64.b64encode(login.encode()).decode()


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory="."))
server.serve_forever()
