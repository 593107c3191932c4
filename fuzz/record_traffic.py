#!/usr/bin/env python3
"""Serve repositories with `git http-backend` (as CGI) and record every request
body real git clients send, for the fuzz targets' seed corpora.

Usage: record_traffic.py ROOT CORPUS PORTFILE
  ROOT      directory of bare repositories (GIT_PROJECT_ROOT)
  CORPUS    fuzz/corpus: bodies go to the directories of the targets that parse them
  PORTFILE  where the port listened on is written once serving
"""
import gzip
import hashlib
import http.server
import os
import subprocess
import sys

ROOT, CORPUS, PORTFILE = sys.argv[1:4]


def save(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def record(path, protocol, body):
    save("pktline", body)
    # The gzip target reads a first byte choosing the encoding (0: gzip).
    save("gzip_body", b"\x00" + gzip.compress(body))
    if path.endswith("git-upload-pack"):
        save("v2_command" if "version=2" in protocol else "upload_request_v0", body)
    elif path.endswith("git-receive-pack"):
        # The target's first byte chooses how the body is cut into pieces.
        save("receive_pack_commands", b"\x3f" + body)
        at = body.find(b"PACK")
        if at >= 0:
            save("pack_ingest", body[at:])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.cgi(b"")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        record(self.path.split("?")[0], self.headers.get("Git-Protocol", ""), body)
        self.cgi(body)

    def cgi(self, body):
        path, _, query = self.path.partition("?")
        env = dict(
            os.environ,
            GIT_PROJECT_ROOT=ROOT,
            GIT_HTTP_EXPORT_ALL="1",
            REQUEST_METHOD=self.command,
            PATH_INFO=path,
            QUERY_STRING=query,
            CONTENT_TYPE=self.headers.get("Content-Type", ""),
            CONTENT_LENGTH=str(len(body)),
            GIT_PROTOCOL=self.headers.get("Git-Protocol", ""),
            REMOTE_USER="fuzz",
            REMOTE_ADDR="127.0.0.1",
        )
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.split(b"\r\n"):
            name, _, value = line.decode().partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORTFILE, "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
