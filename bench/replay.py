#!/usr/bin/env python3
"""An instant Git server, for measuring what is the client's own.

    replay.py record PORT UPSTREAM DIR   forward every request to UPSTREAM (a base
                                         URL such as http://127.0.0.1:8080) and keep
                                         its answer in DIR
    replay.py serve PORT DIR             answer each request with the answer kept
                                         for the same request, at once (no kept
                                         answer: 404)

A request is the same when its method, path, query, Git-Protocol header and body
(as sent, compressed or not) are: a git command run again from the same starting
state sends the same requests. Run against `serve`, the command's wall time is
its own work plus a loopback round trip per request: no server sending the same
answers could make it finish sooner. Prints the listening port once ready.
"""

import hashlib
import http.client
import http.server
import os
import sys
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}


def read_body(handler):
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            body += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def key_of(handler, body):
    h = hashlib.sha256()
    for part in (handler.command, handler.path, handler.headers.get("Git-Protocol", "")):
        h.update(part.encode() + b"\0")
    h.update(body)
    return h.hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm
    # and the client's delayed ACK hold the body back some 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, content_type, body):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        body = read_body(self)
        key = key_of(self, body)
        path = os.path.join(self.server.dir, key)
        if self.server.upstream:
            up = urllib.parse.urlsplit(self.server.upstream)
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=600)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            conn.request(self.command, up.path.rstrip("/") + self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status, content_type = resp.status, resp.getheader("Content-Type", "")
            conn.close()
            with open(path + ".tmp", "wb") as f:
                f.write(f"{status} {content_type}\n".encode() + data)
            os.replace(path + ".tmp", path)
        else:
            try:
                with open(path, "rb") as f:
                    head, data = f.read().split(b"\n", 1)
            except FileNotFoundError:
                sys.stderr.write(f"replay: no answer kept for {self.command} {self.path}\n")
                self.answer(404, "text/plain", b"no answer kept for this request\n")
                return
            status, _, content_type = head.decode().partition(" ")
            status = int(status)
        self.answer(status, content_type, data)

    do_GET = do_POST = handle_any


def main():
    mode = sys.argv[1]
    if mode == "record":
        port, upstream, directory = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    elif mode == "serve":
        port, upstream, directory = int(sys.argv[2]), None, sys.argv[3]
    else:
        sys.exit(__doc__)
    os.makedirs(directory, exist_ok=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.dir, server.upstream = directory, upstream
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
