#!/usr/bin/env bash
# Make a throw-away certificate authority and a server certificate it signed,
# for the tests of GitClaw's TLS connections (PostgreSQL, Redis, S3, OTLP):
#   scripts/test-certs.sh DIR
# writes DIR/ca.pem (the CA's certificate, what a client is told to trust),
# DIR/server.pem and DIR/server.key (for 127.0.0.1 and localhost), and
# DIR/client.pem and DIR/client.key, a client certificate for the name
# gitclaw_cert (what a server that asks for client certificates is shown; the
# PostgreSQL role of that name logs in with it). Needs the `openssl` command.
# The certificates are valid for two days (CERT_DAYS, if set).
set -euo pipefail
dir=${1:?usage: scripts/test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
days=${CERT_DAYS:-2}
key() { openssl req "$@" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes 2>/dev/null; }
key -x509 -keyout ca.key -out ca.pem -days "$days" -subj "/CN=GitClaw test CA"
key -keyout server.key -out server.csr -subj "/CN=localhost"
printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
  "keyUsage=digitalSignature" "extendedKeyUsage=serverAuth" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -out server.pem -days "$days" -extfile server.ext 2>/dev/null
key -keyout client.key -out client.csr -subj "/CN=gitclaw_cert"
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature" \
  "extendedKeyUsage=clientAuth" > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -out client.pem -days "$days" -extfile client.ext 2>/dev/null
rm -f server.csr server.ext client.csr client.ext ca.srl
chmod 600 server.key client.key ca.key
