"""The Flask app the integration tests and the README's quick start run
under a real gunicorn, behind gunicorn-proxy.

Each route exercises one thing the proxy promises; the test that uses it
says which. ProxyFix trusts exactly one proxy for each X-Forwarded-* header,
which is how a team puts this app behind gunicorn-proxy.
"""

import gzip
import hashlib
import json
import os
import time

from flask import Flask, Response, jsonify, redirect, request, stream_with_context, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

app = Flask(__name__)
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)


@app.route("/", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def index():
    """What the app saw: the headers, the raw request-target, the URL it
    would build for itself, and the body's size and digest."""
    body = request.get_data()
    return jsonify(
        method=request.method,
        raw_uri=request.environ.get("RAW_URI"),
        url=request.url,
        external=url_for("index", _external=True),
        remote_addr=request.remote_addr,
        scheme=request.scheme,
        headers=[[k, v] for k, v in request.headers.items()],
        environ_keys=sorted(k for k in request.environ if k.startswith("HTTP_")),
        body_length=len(body),
        body_sha256=hashlib.sha256(body).hexdigest(),
        pid=os.getpid(),
    )


@app.route("/echo", methods=["GET", "POST", "PUT"])
def echo():
    """Whatever path and query the proxy sent, as gunicorn received it."""
    return jsonify(raw_uri=request.environ.get("RAW_URI"), query=request.query_string.decode("latin-1"))


@app.route("/<path:anything>", methods=["GET", "POST"])
def any_path(anything):
    return jsonify(raw_uri=request.environ.get("RAW_URI"), path=anything)


@app.route("/redirect")
def go_elsewhere():
    """A redirect built by url_for: the classic port bug of seed 001."""
    return redirect(url_for("index", _external=True) + "landed")


@app.route("/sleep/<float:seconds>")
@app.route("/sleep/<int:seconds>")
def sleep(seconds):
    time.sleep(seconds)
    return jsonify(slept=seconds, pid=os.getpid())


@app.route("/big/<int:mib>")
def big(mib):
    """mib MiB of a known pattern, so the reader can check every byte."""
    chunk = bytes(range(256)) * 4096  # 1 MiB
    return Response(chunk * mib, mimetype="application/octet-stream")


@app.route("/status/<int:code>")
def status(code):
    return Response("status %d\n" % code, status=code, mimetype="text/plain")


@app.route("/hop-by-hop")
def hop_by_hop():
    """A response carrying headers that must not reach the client."""
    resp = Response("hop\n", mimetype="text/plain")
    resp.headers["Connection"] = "X-Secret-Hop"
    resp.headers["X-Secret-Hop"] = "must not cross"
    resp.headers["Keep-Alive"] = "timeout=5"
    resp.headers["Proxy-Authenticate"] = "Basic"
    resp.headers["Upgrade"] = "h2c"
    resp.headers["X-Kept"] = "yes"
    resp.headers["Set-Cookie"] = "a=1; Path=/"
    resp.headers.add("Set-Cookie", "b=2; Path=/")
    resp.headers["Strict-Transport-Security"] = "max-age=1"
    return resp


@app.route("/die")
def die():
    """Sends the header and part of the body, then the worker dies."""

    def generate():
        yield b"x" * 1000
        os._exit(1)

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.route("/crash")
def crash():
    """The worker dies before answering anything."""
    os._exit(1)


@app.route("/pid")
def pid():
    return jsonify(pid=os.getpid())


@app.route("/events")
def events():
    """Server-Sent Events, one a second, each stamped with the time the app
    wrote it: the proxy must relay them as they come."""

    def generate():
        for i in range(3):
            yield "data: %d %.6f\n\n" % (i, time.time())
            time.sleep(1)

    return Response(generate(), mimetype="text/event-stream")


@app.route("/unbuffered")
def unbuffered():
    """Any answer the app marks with X-Accel-Buffering: no is streamed."""

    def generate():
        for i in range(3):
            yield "chunk %d %.6f\n" % (i, time.time())
            time.sleep(1)

    return Response(generate(), mimetype="text/plain", headers={"X-Accel-Buffering": "no"})


def json_document(size):
    """A JSON document of exactly size bytes (at least 12), shaped like an
    API's list answer and padded to the size: the same for every call, so
    its ETag is stable."""
    parts, length, i = [], 1, 0
    while True:
        item = json.dumps({"id": i, "name": "item-%d" % i, "price": i * 37 % 1000 / 100,
                           "tags": ["tag-%d" % (i % 17)], "description": "Item %d of the catalogue." % i},
                          separators=(",", ":"))
        if length + len(item) + 1 + len('{"pad":""}]') > size:
            break
        parts.append(item + ",")
        length += len(item) + 1
        i += 1
    head = "[" + "".join(parts)
    pad = max(size - len(head) - len('{"pad":""}]'), 0)
    return (head + '{"pad":"' + "x" * pad + '"}]').encode()


@app.route("/json/<int:size>", methods=["GET", "HEAD"])
def json_of_size(size):
    """size bytes of JSON with a strong ETag (compression weakens it).
    ?vary=X adds Vary: X, ?cache=X adds Cache-Control: X."""
    body = json_document(size)
    resp = Response(body, mimetype="application/json")
    resp.set_etag(hashlib.sha256(body).hexdigest()[:16])
    if request.args.get("vary"):
        resp.headers["Vary"] = request.args["vary"]
    if request.args.get("cache"):
        resp.headers["Cache-Control"] = request.args["cache"]
    return resp


@app.route("/encoded")
def already_encoded():
    """A body the app compressed itself: the proxy must pass it as is."""
    body = gzip.compress(b"already compressed by the app\n" * 200, mtime=0)
    return Response(body, mimetype="text/plain", headers={"Content-Encoding": "gzip"})
