"""A local HTTP server for the fetch tests: serves files from a folder
with the ways real servers fail, chosen by the first path component:

  /ok/PATH        the file, with HTTP ranges (206, 416)
  /cut/PATH       the first request of each file is cut halfway (the
                  connection is closed after half of the promised bytes);
                  later requests are served normally
  /stall/PATH     sends half of the file, then nothing for 60 s
  /norange/PATH   ignores Range headers (always 200 and the whole file)
  /wrong/PATH     the right length of the wrong bytes
  /404/PATH, /500/PATH   that status
  /slowok/PATH    the file in 64 KiB pieces, 100 ms apart (the lock and Ctrl-C tests)
  /hold/PATH      while state.release is not set: half of the file, then
                  nothing until it is set (then the connection is closed);
                  once set, served as /ok/ (the service's download tests)
  /fail/PATH      500 while state.failing is set, else as /ok/

Every request is logged as (mode, path, range header, status, bytes sent).
"""
import http.server
import os
import threading
import time


class State:
    def __init__(self, root):
        self.root = root
        self.log = []
        self.cut_done = set()
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.failing = threading.Event()


def make_handler(state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def record(self, mode, rel, rng, status, sent):
            with state.lock:
                state.log.append((mode, rel, rng, status, sent))

        def do_GET(self):
            parts = self.path.lstrip("/").split("/", 1)
            mode, rel = parts[0], parts[1] if len(parts) > 1 else ""
            rng = self.headers.get("Range")
            if mode == "fail" and state.failing.is_set():
                mode = "500"
            if mode in ("404", "500"):
                body = b"no\n"
                self.send_response(int(mode))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.record(mode, rel, rng, int(mode), 0)
                return
            path = os.path.join(state.root, rel)
            if not os.path.isfile(path):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.record(mode, rel, rng, 404, 0)
                return
            data = open(path, "rb").read()
            if mode == "wrong":
                data = bytes((b + 1) % 256 for b in data[:4096]) + data[4096:]
            start = 0
            if rng and mode != "norange" and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % len(data))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.record(mode, rel, rng, 416, 0)
                    return
                self.send_response(206)
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
                status = 206
            else:
                self.send_response(200)
                status = 200
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if mode == "cut":
                with state.lock:
                    first = rel not in state.cut_done
                    state.cut_done.add(rel)
                if first:
                    half = len(body) // 2
                    self.wfile.write(body[:half])
                    self.wfile.flush()
                    self.record(mode, rel, rng, status, half)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
            if mode == "hold" and not state.release.is_set():
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                self.record(mode, rel, rng, status, half)
                state.release.wait()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if mode == "stall":
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                self.record(mode, rel, rng, status, half)
                time.sleep(60)
                return
            if mode == "slowok":
                for k in range(0, len(body), 65536):
                    self.wfile.write(body[k:k + 65536])
                    self.wfile.flush()
                    time.sleep(0.1)
            else:
                self.wfile.write(body)
            self.record(mode, rel, rng, status, len(body))

    return Handler


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients that hang up (the cut and stall tests) are expected


def start(root):
    """Serves root on 127.0.0.1 (a free port); returns (server, state, base URL)."""
    state = State(root)
    server = Server(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return server, state, "http://127.0.0.1:%d" % server.server_address[1]
