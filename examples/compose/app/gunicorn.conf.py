# gunicorn behind gunicorn-proxy: sync workers are safe, because the proxy
# hands them only complete requests and takes whole answers at once.
import os

bind = "0.0.0.0:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
# A worker stuck this long is killed (PROXY_READ_TIMEOUT in proxy.env is longer).
timeout = 30
graceful_timeout = 30
# Longer than the 1 s the proxy keeps an idle connection to the app, so the
# proxy, not gunicorn, closes idle connections.
keepalive = 2
# The proxy writes the access log (LOG=stdout); gunicorn's error log goes to stderr.
accesslog = None
errorlog = "-"
