"""A flaky network in front of a registry, for strata's retry tests: every
EVERY-th request is read whole and answered 503 without reaching the
registry; the others are passed on as they are (the Host header too, so the
registry's upload locations point back at the proxy).

    python3 fault_proxy.py PORT REGISTRY_HOST:PORT EVERY
"""

import http.client
import http.server
import sys
import threading

upstream = sys.argv[2]
every = int(sys.argv[3])
count = 0
lock = threading.Lock()


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        global count
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        with lock:
            count += 1
            fail = count % every == 0
        if fail:
            message = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(message)))
            self.end_headers()
            # A HEAD answer has no body: one would be read as the next answer.
            if self.command != "HEAD":
                self.wfile.write(message)
            return
        connection = http.client.HTTPConnection(upstream)
        headers = {k: v for k, v in self.headers.items()}
        connection.request(self.command, self.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        # A HEAD answer keeps the length of what a GET would send.
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        connection.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Proxy).serve_forever()
