"""A Flask app as a team deploys it behind gunicorn-proxy.

ProxyFix trusts exactly one proxy for each X-Forwarded-* header: the
gunicorn-proxy in front, which sets them all and removes a client's own.
"""

import os

from flask import Flask, jsonify, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

app = Flask(__name__)
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)


@app.route("/")
def index():
    return jsonify(
        message="hello from gunicorn, behind gunicorn-proxy",
        url=request.url,
        client=request.remote_addr,
        login=url_for("login", _external=True),
        worker=os.getpid(),
    )


@app.route("/login")
def login():
    return "log in here\n"


@app.route("/upload", methods=["POST"])
def upload():
    return jsonify(received=len(request.get_data()))
