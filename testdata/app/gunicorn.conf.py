# gunicorn settings for the test app: sync workers (the ones that must never
# meet a slow client), short timeouts so a stuck test fails fast.
workers = 2
worker_class = "sync"
timeout = 30
graceful_timeout = 5
accesslog = None
