"""A WSGI app for gunicorn under `daemonkit run` (tests/servers.rs)."""
import os


def app(environ, start_response):
    body = ("hello from gunicorn pid %d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
