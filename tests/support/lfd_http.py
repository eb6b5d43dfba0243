#!/usr/bin/env python3
"""A plain HTTP server that knows nothing of daemonkit, only LISTEN_FDS: it serves on the
inherited sockets, fds 3.. (what `daemonkit run --listen ADDR -- python3 lfd_http.py` passes).

GET / -> "hello from command pid N", /pid, /ids, /slow?ms=N, /env?k=NAME, 404 otherwise.
One log line per request on stderr, starting with the pid. SIGTERM: stop accepting, finish
the requests in flight, exit 0.
"""
import http.server
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

nfds = int(os.environ.get("LISTEN_FDS", "0"))
if nfds < 1 or os.environ.get("LISTEN_PID") != str(os.getpid()):
    sys.exit("lfd_http.py: no listening socket in LISTEN_FDS")
# socket(fileno=) takes ownership of the fd: no duplicate stays open. Several workers share
# these sockets: a blocking accept() that loses the race would hang the serving thread (and
# a graceful stop) until the next connection, hence non-blocking.
socks = [socket.socket(fileno=3 + i) for i in range(nfds)]
for sock in socks:
    sock.setblocking(False)


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        pid = os.getpid()
        if url.path == "/":
            self.reply(200, f"hello from command pid {pid}\n")
        elif url.path == "/pid":
            self.reply(200, f"{pid}\n")
        elif url.path == "/ids":
            r, e, _ = os.getresuid()
            gr, ge, _ = os.getresgid()
            groups = ",".join(str(g) for g in sorted(os.getgroups()))
            self.reply(200, f"uid={r} gid={gr} euid={e} egid={ge} groups={groups}\n")
        elif url.path == "/env":
            k = urllib.parse.parse_qs(url.query).get("k", [""])[0]
            self.reply(200, f"{os.environ.get(k, '')}\n")
        elif url.path == "/slow":
            ms = int(urllib.parse.parse_qs(url.query).get("ms", ["1000"])[0])
            time.sleep(ms / 1000)
            self.reply(200, "done\n")
        else:
            self.reply(404, "not found\n")

    def log_message(self, fmt, *args):
        sys.stderr.write(f"{os.getpid()} {fmt % args}\n")
        sys.stderr.flush()


servers = []
for sock in socks:
    server = http.server.ThreadingHTTPServer(("", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.server_address = sock.getsockname()
    server.daemon_threads = False            # server_close() waits for requests in flight
    servers.append(server)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
for server in servers:
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
# Readiness is opt-in (LFD_READY=fd|notify, for `--ready fd|notify`); by default the program
# knows nothing and daemonkit assumes it ready after --ready delay=MS.
how = os.environ.get("LFD_READY")
if how == "fd" and os.environ.get("DAEMONKIT_READY_FD"):
    fd = int(os.environ["DAEMONKIT_READY_FD"])
    os.write(fd, b"r")
    os.close(fd)
elif how == "notify" and os.environ.get("NOTIFY_SOCKET"):
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as n:
        n.sendto(b"READY=1", addr)
while not stop.wait(0.05):
    pass
for server in servers:
    server.shutdown()       # stop accepting
    server.socket.close()
for server in servers:
    server.server_close()   # then wait for the requests in flight
sys.exit(0)
