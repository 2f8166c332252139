"""A fault-injecting reverse proxy in front of a real registry, for tests.

Rules are matched in order against (method, path); each fires `times` times (None =
forever).  Actions:
  ("status", code, headers)   answer with that status and no upstream request
  ("truncate", nbytes)        forward, but send only nbytes of the body, then close
  ("corrupt", offset)         forward with one byte of the body flipped
  ("ignore_range",)           forward without the client's Range header (upstream: 200)
  ("redirect", base_url)      307 to base_url + path (a "blob storage" server)
  ("body", bytes, headers)    answer 200 with this body
  ("stall", nbytes)           forward, send nbytes of the body, then hang until stop()
                              (a client is caught mid-download, e.g. to signal it)
  ("delay", seconds)          forward after waiting (to see how many requests overlap)
  ("endless", status, headers) answer with that status and a body that never ends (no
                              Content-Length, or the one in headers): zeros until the
                              client hangs up (at most 1 GiB); the bytes the client
                              took are entry[4] in the log
`max_inflight` is the largest number of GET .../blobs/ requests served at once.
With `keep_host = True` the client's Host header is forwarded, so the registry's
absolute Location headers (blob uploads) point back at the proxy.
Every request is recorded in `log` as (method, path, headers dict, status sent).
"""
import http.client
import http.server
import re
import threading


class Rule:
    def __init__(self, method, path_re, action, times=1):
        self.method = method
        self.path_re = re.compile(path_re)
        self.action = action
        self.times = times

    def take(self, method, path):
        if self.times == 0 or (self.method and self.method != method) or not self.path_re.search(path):
            return False
        if self.times is not None:
            self.times -= 1
        return True


class FaultProxy:
    def __init__(self, upstream):
        self.upstream = upstream          # "127.0.0.1:PORT" (plain http)
        self.rules = []
        self.log = []
        self.httpd = None
        self.released = threading.Event()
        self.inflight = 0
        self.keep_host = False
        self.max_inflight = 0
        self.count_lock = threading.Lock()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.httpd.server_address[1]

    def add(self, method, path_re, action, times=1):
        self.rules.append(Rule(method, path_re, action, times))

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _rule(self):
                for r in proxy.rules:
                    if r.take(self.command, self.path):
                        return r.action
                return None

            def _handle(self):
                blob = self.command == "GET" and "/blobs/" in self.path
                if blob:
                    with proxy.count_lock:
                        proxy.inflight += 1
                        proxy.max_inflight = max(proxy.max_inflight, proxy.inflight)
                try:
                    self._serve()
                finally:
                    if blob:
                        with proxy.count_lock:
                            proxy.inflight -= 1

            def _serve(self):
                action = self._rule()
                hdrs = {k: v for k, v in self.headers.items()}
                entry = [self.command, self.path, hdrs, None]
                proxy.log.append(entry)
                body = None
                if "Content-Length" in self.headers:
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                if action and action[0] == "status":
                    extra = action[2] if len(action) > 2 else {}
                    self.send_response(action[1])
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    entry[3] = action[1]
                    return
                if action and action[0] == "redirect":
                    self.send_response(307)
                    self.send_header("Location", action[1] + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    entry[3] = 307
                    return
                if action and action[0] == "body":
                    data = action[1]
                    self.send_response(200)
                    for k, v in (action[2] if len(action) > 2 else {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    entry[3] = 200
                    return
                if action and action[0] == "endless":
                    self.send_response(action[1])
                    for k, v in (action[2] if len(action) > 2 else {}).items():
                        self.send_header(k, v)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    entry[3] = action[1]
                    entry.append(0)
                    chunk = bytes(64 << 10)
                    try:
                        while entry[4] < (1 << 30):
                            self.wfile.write(chunk)
                            entry[4] += len(chunk)
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                if action and action[0] == "delay":
                    import time
                    time.sleep(action[1])
                drop = ("connection",) if proxy.keep_host else ("host", "connection")
                fwd = {k: v for k, v in self.headers.items() if k.lower() not in drop}
                if action and action[0] == "ignore_range":
                    fwd.pop("Range", None)
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=fwd)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status)
                entry[3] = resp.status
                for k, v in resp.getheaders():
                    if k.lower() in ("connection", "transfer-encoding", "content-length"):
                        continue
                    self.send_header(k, v)
                if action and action[0] == "truncate":
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:action[1]])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if action and action[0] == "stall":
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:action[1]])
                    self.wfile.flush()
                    entry.append("stalled")
                    proxy.released.wait(60)
                    self.close_connection = True
                    return
                if action and action[0] == "corrupt" and data:
                    i = min(action[1], len(data) - 1)
                    data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.released.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


class BlobStorage:
    """stands for S3/CDN behind a registry redirect: serves GETs by fetching the same path
    from the registry (no credentials) and records the headers it received"""

    def __init__(self, upstream, auth_header=None):
        self.upstream = upstream
        self.auth_header = auth_header     # the storage's own access to the blobs
        self.log = []
        self.httpd = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def start(self):
        st = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                st.log.append((self.path, {k: v for k, v in self.headers.items()}))
                conn = http.client.HTTPConnection(st.upstream, timeout=30)
                try:
                    fwd = {"Range": self.headers["Range"]} if "Range" in self.headers else {}
                    if st.auth_header:
                        fwd["Authorization"] = st.auth_header
                    conn.request("GET", self.path, headers=fwd)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status)
                if resp.getheader("Content-Range"):
                    self.send_header("Content-Range", resp.getheader("Content-Range"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
