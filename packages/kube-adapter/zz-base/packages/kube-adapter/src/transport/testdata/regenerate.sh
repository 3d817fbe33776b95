#!/bin/sh
# Regenerates the test PKI of kubeconfig.test.ts: a CA, a server certificate for 127.0.0.1 and a client
# certificate (CN margay-node, O system:nodes), P-256 keys, valid for 100 years. Run from this directory.
set -eu
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.crt -subj /CN=margay-test-ca -days 36500
openssl req $ec -keyout server.key -out server.csr -subj /CN=127.0.0.1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 36500 -extfile server.ext
openssl req $ec -keyout client.key -out client.csr -subj "/O=system:nodes/CN=margay-node"
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 36500 -extfile client.ext
rm -f server.csr client.csr server.ext client.ext ca.srl ca.key
