#!/usr/bin/env bash
# Runs gunicorn-proxy on :8000 in front of the sample Flask app
# (testdata/app) under gunicorn on 127.0.0.1:8080. Installs gunicorn and
# Flask from Debian when they are missing. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

if [ ! -x /usr/bin/gunicorn ] || ! /usr/bin/python3 -c 'import flask' 2>/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gunicorn python3-flask
fi

go build -o /tmp/gunicorn-proxy-demo ./cmd/gunicorn-proxy

(cd testdata/app && exec /usr/bin/gunicorn -c gunicorn.conf.py --bind 127.0.0.1:8080 app:app) &
app=$!
trap 'kill $app 2>/dev/null; wait $app 2>/dev/null' EXIT

echo "gunicorn-proxy on http://localhost:8000 -> gunicorn on 127.0.0.1:8080; try:"
echo "  curl -i -H 'Host: example.com:18080' http://localhost:8000/redirect"
LOG=stdout /tmp/gunicorn-proxy-demo 127.0.0.1:8080
