"""A small Docker token server (the Bearer flow of the distribution spec) for tests.

docker-registry is configured with `auth: token` pointing here; it verifies our JWTs
(RS256, signed by `openssl dgst`, the certificate in the x5c header and in the
registry's rootcertbundle).  Policy: repositories under `public/` may be pulled
anonymously; any known user (Basic credentials) gets pull+push everywhere; wrong
credentials get 401.  Every request is recorded in `requests` for assertions.
"""
import base64
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.parse
import uuid

from tests.image.registry import make_cert


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, workdir, users=None, service="test-registry", issuer="test-issuer", refresh_tokens=None):
        self.dir = workdir
        self.users = users or {}
        self.refresh_tokens = refresh_tokens or {}     # identity token -> user (OAuth2 POST flow)
        self.service = service
        self.issuer = issuer
        self.requests = []
        self.cert, self.key = make_cert(os.path.join(workdir, "token-cert"), cn="test token issuer")
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.httpd = None

    @property
    def realm(self):
        return "http://127.0.0.1:%d/token" % self.httpd.server_address[1]

    def registry_config(self):
        return {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                "rootcertbundle": self.cert}

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                             capture_output=True, check=True).stdout
        return signing_input + "." + _b64url(sig)

    def grant(self, user, scopes):
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) != 3 or parts[0] != "repository":
                continue
            name, actions = parts[1], parts[2].split(",")
            if user is None:
                allowed = [a for a in actions if a == "pull"] if name.startswith("public/") else []
            else:
                allowed = [a for a in actions if a in ("pull", "push")]
            if allowed:
                access.append({"type": "repository", "name": name, "actions": allowed})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        return self.sign(claims)

    def start(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                # the OAuth2 form: grant_type=refresh_token with an identity token
                n = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                server.requests.append({"path": self.path, "method": "POST", "form": form,
                                        "authorization": self.headers.get("Authorization", "")})
                rt = (form.get("refresh_token") or [""])[0]
                if (form.get("grant_type") or [""])[0] != "refresh_token" or rt not in server.refresh_tokens:
                    self._answer(401, {"details": "invalid refresh token"})
                    return
                tok = server.grant(server.refresh_tokens[rt], form.get("scope", []))
                self._answer(200, {"access_token": tok, "expires_in": 300, "refresh_token": rt})

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query)
                authz = self.headers.get("Authorization", "")
                server.requests.append({"path": u.path, "query": q, "authorization": authz})
                if u.path != "/token":
                    self.send_error(404)
                    return
                user = None
                if authz.startswith("Basic "):
                    try:
                        user, _, pw = base64.b64decode(authz[6:]).decode().partition(":")
                    except ValueError:
                        user, pw = "", None
                    if server.users.get(user) != pw:
                        body = json.dumps({"details": "incorrect username or password"}).encode()
                        self.send_response(401)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                tok = server.grant(user, q.get("scope", []))
                body = json.dumps({"token": tok, "access_token": tok, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
