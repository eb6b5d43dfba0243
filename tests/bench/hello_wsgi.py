# The gunicorn peer of tests/bench/bench_workers.c: a trivial WSGI app, and (as a gunicorn
# config file, -c) a post_worker_init hook that logs "worker PID ready" once the worker has
# loaded the app and is about to accept, the line the bench waits for (as for daemonkit's).
#   gunicorn -c hello_wsgi.py --pythonpath DIR -w N -b 127.0.0.1:PORT hello_wsgi:app
import os


def app(environ, start_response):
    body = b"hello from gunicorn pid %d\n" % os.getpid()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def post_worker_init(worker):
    worker.log.info("worker %d ready", worker.pid)
