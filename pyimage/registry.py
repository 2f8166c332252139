"""Distribution (registry v2) client on top of requests.

* Transport: https, or plain http when asked (--insecure) or for a loopback registry
  that does not speak TLS (like go-containerregistry, which also lets loopback fall
  back to http).  Certificates: --cert-dir DIR (docker's certs.d layout: *.crt are CAs,
  client.cert/client.key), default /etc/docker/certs.d/HOST:PORT when it exists.
* Auth: ping /v2/, read WWW-Authenticate.  Basic: credentials on every request.
  Bearer: GET the realm with service + scope (Basic credentials if we have any, else
  anonymous), token or access_token, cached per scope until expires_in; a 401 with a
  new scope (insufficient_scope) is retried once.
* Retries: 429, 5xx and broken connections, exponential backoff honouring Retry-After.
  A blob body that breaks is resumed with `Range: bytes=N-` (a 206 whose Content-Range
  starts at N); a server that answers 200 instead is read from the start and the prefix
  we already have is skipped.
* Redirects (blob storage): followed here (at most MAX_REDIRECTS), dropping
  Authorization when the scheme, host or port changes, so registry credentials never
  reach the storage server.  Not by requests: it reads a redirect's whole body.
* Bounded reads: every response is streamed and only as much of a body is read as its
  purpose needs (an error body or a token answer BODY_MAX, a manifest or config
  mf.MAX_MANIFEST, a blob its descriptor's size), whatever Content-Length says or
  omits: a hostile registry cannot make pyimage buffer an endless body.
"""
import base64
import hashlib
import os
import threading
import time
import urllib.parse

import requests
import urllib3.exceptions

from . import auth as authmod
from . import manifest as mf
from .errors import AuthError, DigestMismatch, NotFound, PyimageError, RegistryError, show

USER_AGENT = "pyimage/0.1"
CHUNK = 1 << 20
RETRY_STATUS = (408, 429, 500, 502, 503, 504)
BODY_MAX = 1 << 20          # error bodies and token answers (containers/image: 1 MiB too)
MAX_REDIRECTS = 10
REDIRECT_STATUS = (301, 302, 303, 307, 308)


def read_body(resp, limit):
    """at most `limit` bytes of a streamed response's body (None if it is longer);
    urllib3 2 bounds decoded output by the amount asked for"""
    try:
        data = resp.raw.read(limit + 1, decode_content=True)
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError):
        return b""
    return None if len(data) > limit else data


def _json_body(resp, limit=BODY_MAX):
    import json
    data = read_body(resp, limit)
    if data is None:
        raise ValueError("body larger than %d bytes" % limit)
    return json.loads(data)


def _backoff_base():
    try:
        return float(os.environ.get("PYIMAGE_RETRY_BACKOFF", "0.5"))
    except ValueError:
        return 0.5


def _short(text, n=200):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n] + "..."


def _errors_of(resp):
    """distribution error body -> (codes, message)"""
    try:
        body = _json_body(resp)
        errs = body.get("errors") or []
        codes = [e.get("code", "") for e in errs if isinstance(e, dict)]
        msgs = [e.get("message") or e.get("code") or "" for e in errs if isinstance(e, dict)]
        if msgs:
            return codes, show(_short("; ".join(str(m) for m in msgs if m)))
        if body.get("details") or body.get("message"):
            return codes, show(_short(body.get("details") or body.get("message")))
    except (ValueError, AttributeError, TypeError):
        pass
    return [], _short(resp.reason or "") if resp is not None else ""


def _conn_error_text(err):
    s = str(err)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "Connection refused", "Name or service not known",
                   "No address associated",
                   "timed out", "Connection reset", "Remote end closed", "IncompleteRead"):
        if marker in s:
            if marker == "CERTIFICATE_VERIFY_FAILED":
                return "tls certificate verify failed (use --cert-dir with the registry's CA, or --insecure)"
            if marker == "IncompleteRead":
                return "connection broken mid-body (truncated)"
            return marker.lower()
    return _short(s, 160)


class Client:
    """One registry host.  Thread-safe for concurrent blob downloads."""

    def __init__(self, host, insecure=False, cert_dir=None, creds=None, retries=5, loopback=False,
                 config=None):
        self.host = host
        self.api_host = mf_api_host(host)
        self.insecure = insecure
        self.loopback = loopback
        self.retries = retries
        self.session = _Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.trust_env = False      # no proxies from the environment for registries
        self._tls(cert_dir)
        self.creds = creds if creds is not None else _lookup_creds(host, config)
        self.scheme = None
        self.challenge = None               # (scheme, params) from the ping
        self.tokens = {}                    # scope -> (token, expiry)
        self.lock = threading.Lock()
        self.backoff = _backoff_base()

    # --- setup ---------------------------------------------------------------------

    def _tls(self, cert_dir):
        d = cert_dir
        if d is None:
            cand = os.path.join("/etc/docker/certs.d", self.host)
            d = cand if os.path.isdir(cand) else None
        if self.insecure:
            self.session.verify = False
            import urllib3
            urllib3.disable_warnings()
        if d and os.path.isdir(d):
            cas = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".crt"))
            cert = os.path.join(d, "client.cert")
            key = os.path.join(d, "client.key")
            if os.path.exists(cert) and os.path.exists(key):
                self.session.cert = (cert, key)
            if cas and not self.insecure:
                self.session.verify = _ca_bundle(cas)

    # --- transport -----------------------------------------------------------------

    def url(self, path):
        return "%s://%s%s" % (self.scheme, self.api_host, path)

    def ping(self):
        """find the scheme and the auth challenge (once)"""
        if self.scheme is not None:
            return
        with self.lock:
            if self.scheme is not None:
                return
            # https first; plain http only for --insecure or a loopback registry
            schemes = ["https", "http"] if (self.insecure or self.loopback) else ["https"]
            last = None
            for sch in schemes:
                try:
                    # a refused https connection on a registry that may speak http is
                    # an answer, not a fault: try http at once
                    r = self._send_retry("GET", "%s://%s/v2/" % (sch, self.api_host), {}, stream=True,
                                         what="ping %s" % self.host,
                                         refused_tries=1 if sch == "https" and len(schemes) > 1 else 2)
                except requests.exceptions.SSLError as e:
                    last = e
                    if sch == "https" and len(schemes) > 1 and "CERTIFICATE_VERIFY_FAILED" not in str(e):
                        continue      # the registry speaks plain http
                    raise RegistryError("ping %s: %s" % (self.host, _conn_error_text(e))) from None
                except requests.exceptions.ConnectionError as e:
                    last = e
                    if sch == "https" and len(schemes) > 1:
                        continue
                    raise RegistryError("ping %s: %s" % (self.host, _conn_error_text(e))) from None
                self.scheme = sch
                if r.status_code == 401:
                    self.challenge = authmod.parse_challenge(r.headers.get("WWW-Authenticate"))
                elif r.status_code >= 400 and r.status_code != 404:
                    raise RegistryError("ping %s: http %d %s" % (self.host, r.status_code, _errors_of(r)[1]),
                                        status=r.status_code)
                r.close()
                return
            raise RegistryError("ping %s: %s" % (self.host, _conn_error_text(last)))

    def _send_retry(self, method, url, headers, stream, what, data=None, allow_redirects=True, refused_tries=2):
        """one request with retries on 429/5xx and connection failures.  An unknown host
        name is not retried and a refused connection only `refused_tries` times: nothing
        listens there, so a typo must not cost seconds of backoff"""
        attempt = 0
        while True:
            try:
                r = self._send_follow(method, url, headers, data, allow_redirects)
            except requests.exceptions.SSLError:
                raise
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as e:
                attempt += 1
                text = str(e)
                limit = self.retries
                if "Name or service not known" in text or "No address associated" in text:
                    limit = 1
                elif "Connection refused" in text:
                    limit = min(limit, refused_tries)
                if attempt >= limit or (data is not None and not isinstance(data, (bytes, type(None)))):
                    raise RegistryError("%s: %s" % (what, _conn_error_text(e)), temporary=True) from None
                self._sleep(attempt, None)
                continue
            # a body read from a file was consumed by this attempt: the caller
            # (upload_blob) restarts the whole upload instead
            rewindable = data is None or isinstance(data, bytes)
            if r.status_code in RETRY_STATUS and attempt + 1 < self.retries and rewindable:
                attempt += 1
                ra = r.headers.get("Retry-After")
                r.close()
                self._sleep(attempt, ra)
                continue
            return r

    def _send_follow(self, method, url, headers, data, allow_redirects):
        """one request, its redirects followed here; the body is always streamed (the
        caller reads what it needs, bounded)"""
        origin = urllib.parse.urlsplit(url)
        for _ in range(MAX_REDIRECTS + 1):
            r = self.session.request(method, url, headers=headers, stream=True, data=data,
                                     allow_redirects=False, timeout=(15, 120))
            loc = r.headers.get("Location")
            if not allow_redirects or r.status_code not in REDIRECT_STATUS or not loc:
                return r
            r.close()       # never read: a redirect's body is of no use
            url = urllib.parse.urljoin(url, loc)
            u = urllib.parse.urlsplit(url)
            if u.scheme not in ("http", "https"):
                raise RegistryError("%s %s: redirected to a %s url" % (method, origin.path, show(u.scheme)))
            if (u.scheme, u.hostname, u.port) != (origin.scheme, origin.hostname, origin.port):
                # another server (blob storage): registry credentials stay here
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if r.status_code == 303 or (r.status_code in (301, 302) and method == "POST"):
                method, data = "GET", None
        raise RegistryError("%s %s: more than %d redirects" % (method, origin.path, MAX_REDIRECTS))

    def _sleep(self, attempt, retry_after):
        delay = self.backoff * (2 ** (attempt - 1))
        wait = _retry_after_seconds(retry_after)
        if wait is not None:
            delay = max(delay, min(wait, 60.0))
        time.sleep(min(delay, 60.0 if wait is not None else 30.0))

    def _auth_header(self, scope):
        if self.challenge is None:
            return {}
        kind, params = self.challenge
        if kind == "basic":
            if not self.creds:
                return {}
            raw = ("%s:%s" % self.creds).encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if kind == "bearer":
            tok = self._token(params, scope)
            return {"Authorization": "Bearer " + tok} if tok else {}
        return {}

    def _token(self, params, scope, force=False):
        key = (params.get("realm"), params.get("service"), scope)
        with self.lock:
            t = self.tokens.get(key)
            if t and not force and t[1] > time.monotonic():
                return t[0]
            tok, ttl = self._fetch_token(params, scope)
            self.tokens[key] = (tok, time.monotonic() + ttl)
            return tok

    def _fetch_token(self, params, scope):
        realm = params.get("realm")
        if not realm:
            raise AuthError("authenticate to %s: bearer challenge without realm" % self.host)
        u = urllib.parse.urlsplit(realm)
        if u.scheme not in ("https", "http") or (u.scheme == "http" and self.scheme != "http"):
            raise AuthError("authenticate to %s: token realm %s must use https" % (self.host, realm))
        _check_realm_host(u.hostname or "", self.host, self.loopback)
        q = {}
        if params.get("service"):
            q["service"] = params["service"]
        if scope:
            q["scope"] = scope
        headers = {}
        if self.creds and self.creds[0] == "<token>":
            # an identity token: the OAuth2 refresh-token grant
            form = dict(q, grant_type="refresh_token", refresh_token=self.creds[1], client_id="pyimage")
            r = self._send_retry("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"}, True,
                                 "get token from %s" % realm, data=urllib.parse.urlencode(form).encode())
        else:
            if self.creds:
                raw = ("%s:%s" % self.creds).encode()
                headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
            r = self._send_retry("GET", realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(q),
                                 headers, True, "get token from %s" % realm)
        if r.status_code in (401, 403):
            detail = _errors_of(r)[1]
            if self.creds:
                raise AuthError("authenticate to %s as %s: credentials refused by %s%s"
                                % (self.host, self.creds[0], u.netloc, (" (%s)" % detail) if detail else ""),
                                status=r.status_code)
            raise AuthError("authenticate to %s: anonymous access refused by %s (log in first)"
                            % (self.host, u.netloc), status=r.status_code)
        if r.status_code != 200:
            raise AuthError("authenticate to %s: token endpoint %s answered http %d"
                            % (self.host, u.netloc, r.status_code), status=r.status_code)
        try:
            body = _json_body(r)
            tok = body.get("token") or body.get("access_token")
            ttl = float(body.get("expires_in") or 60)
            if tok is not None and not isinstance(tok, str):
                raise TypeError("token")
        except (ValueError, AttributeError, TypeError):
            raise AuthError("authenticate to %s: token endpoint answered invalid json (or more than %d bytes)"
                            % (self.host, BODY_MAX)) from None
        finally:
            r.close()
        if not tok:
            raise AuthError("authenticate to %s: token endpoint answered no token" % self.host)
        # expire a little early; at least 60 s like containers/image
        return tok, max(ttl, 60.0) - 5.0

    def request(self, method, path, scope, what, headers=None, stream=False, data=None, ok=(200,),
                allow_redirects=True, url=None):
        """an authenticated request; returns a response with a status in `ok`, else raises"""
        self.ping()
        h = dict(headers or {})
        target = url or self.url(path)
        h.update(self._auth_header(scope))
        r = self._send_retry(method, target, h, stream, what, data=data, allow_redirects=allow_redirects)
        if r.status_code == 401:
            ch = authmod.parse_challenge(r.headers.get("WWW-Authenticate"))
            r.close()
            if ch[0] is not None:
                newscope = scope
                if ch[0] == "bearer" and ch[1].get("scope") and ch[1]["scope"] != scope:
                    newscope = ch[1]["scope"]   # insufficient_scope: ask for what it says
                self.challenge = ch
                h = dict(headers or {})
                if ch[0] == "bearer":
                    h["Authorization"] = "Bearer " + self._token(ch[1], newscope, force=True)
                else:
                    h.update(self._auth_header(newscope))
                r = self._send_retry(method, target, h, stream, what, data=data, allow_redirects=allow_redirects)
            if r.status_code == 401:
                r.close()
                if self.creds:
                    raise AuthError("%s: unauthorized: credentials for %s refused" % (what, self.host), status=401)
                raise AuthError("%s: unauthorized: authentication required (pyimage login %s)" % (what, self.host),
                                status=401)
        if r.status_code in ok:
            return r
        codes, msg = _errors_of(r)
        status = r.status_code
        r.close()
        if status == 404 or "MANIFEST_UNKNOWN" in codes or "NAME_UNKNOWN" in codes or "BLOB_UNKNOWN" in codes:
            raise NotFound("%s: not found%s" % (what, (" (%s)" % msg.lower()) if msg else ""), status=status,
                           codes=codes)
        if status == 403:
            raise AuthError("%s: access denied%s" % (what, (" (%s)" % msg) if msg else ""), status=status)
        raise RegistryError("%s: http %d%s" % (what, status, (" (%s)" % msg) if msg else ""), status=status,
                            codes=codes, temporary=status in RETRY_STATUS)

    # --- manifests -----------------------------------------------------------------

    def _body_retry(self, fn):
        """fn() again when the body of its response broke off (the request itself is
        retried by _send_retry; this covers a connection lost after the headers)"""
        attempt = 0
        while True:
            try:
                return fn()
            except _BodyBroken as e:
                attempt += 1
                if attempt >= self.retries:
                    raise RegistryError(str(e), temporary=True) from None
                self._sleep(attempt, None)

    def get_manifest(self, repo, reference, what, desc=None):
        """(raw bytes, media type, digest) of a manifest or index, the digest verified
        when `reference` is one; `desc` the descriptor it was named by (an index entry),
        whose size is checked before and after the read"""
        return self._body_retry(lambda: self._get_manifest(repo, reference, what, desc))

    def _get_manifest(self, repo, reference, what, desc):
        if desc is not None:
            mf.check_size(desc, "manifest", what)
        scope = "repository:%s:pull" % repo
        r = self.request("GET", "/v2/%s/manifests/%s" % (repo, reference), scope, what,
                         headers={"Accept": mf.ACCEPT}, stream=True)
        name = "manifest %s" % (reference if reference.startswith("sha256:") else show(reference))
        try:
            cl = r.headers.get("Content-Length")
            ctype = r.headers.get("Content-Type", "")
            if cl and cl.isdigit() and int(cl) > mf.MAX_MANIFEST:
                raise RegistryError("%s: %s (%s) is %s bytes, more than the %s limit"
                                    % (what, name, show(ctype.split(";")[0] or "no media type"), cl,
                                       mf.limit_text()))
            data = r.raw.read(mf.MAX_MANIFEST + 1, decode_content=True)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            raise _BodyBroken("%s: reading manifest: %s" % (what, _conn_error_text(e))) from None
        finally:
            r.close()
        if len(data) > mf.MAX_MANIFEST:
            raise RegistryError("%s: %s (%s) is more than the %s limit"
                                % (what, name, show(ctype.split(";")[0] or "no media type"), mf.limit_text()))
        digest = mf.sha256_digest(data)
        if reference.startswith("sha256:") and digest == reference:
            if desc is not None and len(data) != desc["size"]:
                raise DigestMismatch("%s: manifest %s is %d bytes, its descriptor says %d"
                                     % (what, reference, len(data), desc["size"]))
            return data, ctype, digest
        if cl and cl.isdigit() and len(data) < int(cl) and not r.headers.get("Content-Encoding"):
            raise _BodyBroken("%s: reading manifest: connection broken mid-body (got %d of %s bytes)"
                              % (what, len(data), cl))
        if reference.startswith("sha256:"):
            raise DigestMismatch("%s: manifest content has digest %s, not the requested one" % (what, digest))
        return data, ctype, digest

    def get_blob_bytes(self, repo, desc, what, kind="config"):
        """a small blob (a config) in memory: its descriptor's size must be within
        mf.MAX_MANIFEST, and no more than that size is read"""
        return self._body_retry(lambda: self._get_blob_bytes(repo, desc, what, kind))

    def _get_blob_bytes(self, repo, desc, what, kind):
        mf.check_size(desc, kind, what)
        r = self.request("GET", "/v2/%s/blobs/%s" % (repo, desc["digest"]), "repository:%s:pull" % repo,
                         what, stream=True, headers={"Accept-Encoding": "identity"})
        size = desc["size"]
        clean = False
        try:
            data = r.raw.read(size + 1, decode_content=False)
            clean = True
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            broken = _conn_error_text(e)
            data = b""
        finally:
            r.close()
        if not clean:
            raise _BodyBroken("%s: reading %s %s: %s" % (what, kind, desc["digest"], broken))
        if len(data) != size and mf.sha256_digest(data) == desc["digest"]:
            # the registry sent the whole blob (its digest is right): the image is wrong
            raise DigestMismatch("%s: %s %s is %d bytes, its descriptor says %d"
                                 % (what, kind, desc["digest"], len(data), size))
        if len(data) < size:
            raise _BodyBroken("%s: reading %s %s: connection broken mid-body (got %d of %d bytes)"
                              % (what, kind, desc["digest"], len(data), size))
        if len(data) != size or mf.sha256_digest(data) != desc["digest"]:
            raise DigestMismatch("%s: %s %s: content does not match its descriptor (digest or size)"
                                 % (what, kind, desc["digest"]))
        return data

    def fetch_blob(self, repo, desc, out, what, progress=None, cancel=None, have=0, hasher=None, track=None,
                   guard=None):
        """Stream blob `desc` into file object `out` (positioned at `have`, whose first
        `have` bytes were already hashed into `hasher`).  Checks size and digest; resumes
        broken transfers with Range requests.  The open response is kept in the set
        `track` so that another thread can abort_response() it when cancelling.  Every
        write is charged to the space.Guard `guard` first."""
        digest, size = desc["digest"], desc["size"]
        h = hasher or hashlib.sha256()
        done = have
        path = "/v2/%s/blobs/%s" % (repo, digest)
        scope = "repository:%s:pull" % repo
        failures = 0
        while True:
            if cancel is not None and cancel.is_set():
                raise PyimageError("%s: cancelled" % what)
            headers = {"Accept-Encoding": "identity"}
            if done:
                headers["Range"] = "bytes=%d-" % done
            progressed = False
            r = None
            try:
                r = self.request("GET", path, scope, what, headers=headers, stream=True, ok=(200, 206))
                if track is not None:
                    track.add(r)
                    if cancel is not None and cancel.is_set():
                        abort_response(r)      # the canceller may have looked before the add
                skip = 0
                if done:
                    cr = r.headers.get("Content-Range", "")
                    if r.status_code == 206:
                        if not cr.startswith("bytes %d-" % done):
                            r.close()
                            raise RegistryError("%s: server answered range %r for a resume at %d"
                                                % (what, cr, done))
                    else:
                        skip = done    # the range was ignored: drop what we already have
                raw = r.raw
                while True:
                    if cancel is not None and cancel.is_set():
                        r.close()
                        raise PyimageError("%s: cancelled" % what)
                    chunk = raw.read(CHUNK, decode_content=False)
                    if not chunk:
                        break
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk = chunk[skip:]
                        skip = 0
                    if done + len(chunk) > size:
                        r.close()
                        raise DigestMismatch("%s: blob %s is larger than its descriptor's %d bytes"
                                             % (what, digest, size))
                    if guard is not None:
                        guard.charge(len(chunk))
                    out.write(chunk)
                    h.update(chunk)
                    done += len(chunk)
                    progressed = True
                    if progress is not None:
                        progress(len(chunk))
                r.close()
            except RegistryError as e:
                if not e.temporary:
                    raise
                err = e
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
                if cancel is not None and cancel.is_set():
                    raise PyimageError("%s: cancelled" % what) from None
                if done < size and "sha256:" + h.copy().hexdigest() == digest:
                    # what came is the whole blob (its digest), then the connection
                    # ended short of the descriptor's size: the descriptor is wrong
                    raise DigestMismatch("%s: blob %s is %d bytes, its descriptor says %d"
                                         % (what, digest, done, size)) from None
                err = RegistryError("%s: %s" % (what, _conn_error_text(e)), temporary=True)
            else:
                if done == size:
                    break
                if "sha256:" + h.copy().hexdigest() == digest:
                    # the body ended cleanly with the blob's own digest: the registry
                    # sent all of it, the descriptor's size is wrong
                    raise DigestMismatch("%s: blob %s is %d bytes, its descriptor says %d"
                                         % (what, digest, done, size))
                err = RegistryError("%s: blob %s truncated: got %d of %d bytes" % (what, digest, done, size),
                                    temporary=True)
            finally:
                if track is not None and r is not None:
                    track.discard(r)
            if cancel is not None and cancel.is_set():
                raise PyimageError("%s: cancelled" % what)
            failures = 0 if progressed else failures + 1
            if failures >= self.retries:
                raise err
            out.flush()
            self._sleep(max(failures, 1), None)
        out.flush()
        got = "sha256:" + h.hexdigest()
        if got != digest:
            raise DigestMismatch("%s: blob %s: downloaded content has digest %s" % (what, digest, got))
        return done

    # --- push ----------------------------------------------------------------------

    def blob_exists(self, repo, digest, what):
        try:
            r = self.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest), "repository:%s:pull,push" % repo, what)
            r.close()
            return True
        except NotFound:
            return False

    def upload_blob(self, repo, digest, size, open_data, what):
        """monolithic upload: POST to start, PUT the bytes with ?digest="""
        scope = "repository:%s:pull,push" % repo
        for attempt in range(self.retries):
            r = self.request("POST", "/v2/%s/blobs/uploads/" % repo, scope, what, ok=(202,))
            loc = r.headers.get("Location")
            r.close()
            if not loc:
                raise RegistryError("%s: upload answer without Location" % what)
            loc = urllib.parse.urljoin(self.url("/v2/%s/blobs/uploads/" % repo), loc)
            sep = "&" if "?" in loc else "?"
            with open_data() as f:
                try:
                    r = self.request("PUT", None, scope, what, url=loc + sep + urllib.parse.urlencode({"digest": digest}),
                                     headers={"Content-Type": "application/octet-stream",
                                              "Content-Length": str(size)},
                                     data=f, ok=(201, 204))
                    r.close()
                    return
                except RegistryError as e:
                    if not e.temporary or attempt + 1 >= self.retries:
                        raise
            self._sleep(attempt + 1, None)

    def put_manifest(self, repo, reference, data, media_type, what):
        r = self.request("PUT", "/v2/%s/manifests/%s" % (repo, reference), "repository:%s:pull,push" % repo,
                         what, headers={"Content-Type": media_type}, data=data, ok=(201, 202, 204))
        r.close()

    def check_login(self, repo="pyimage/login-check"):
        """verify that the credentials are accepted (a token for a pull scope, or an
        authenticated /v2/)"""
        self.ping()
        if self.challenge is None:
            return
        kind, params = self.challenge
        if kind == "bearer":
            self._token(params, None, force=True)
            return
        r = self.request("GET", "/v2/", None, "log in to %s" % self.host, ok=(200,))
        r.close()


def _retry_after_seconds(value):
    """Retry-After is delta-seconds or an HTTP-date (RFC 9110 10.2.3); None if absent
    or unreadable"""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        import email.utils
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    import datetime
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


class _Session(requests.Session):
    """requests reads a redirect's whole body even with allow_redirects=False (to
    prepare Response.next): redirects are followed in Client._send_follow instead"""

    def resolve_redirects(self, *args, **kwargs):
        return iter(())


class _BodyBroken(Exception):
    """a response body that broke off (internal: retried, then a RegistryError)"""


def abort_response(r):
    """wake a thread blocked reading r's body (a stalled server would hold it for the
    whole read timeout): shut its socket down; the reader then sees a broken body"""
    import socket
    for get in (lambda: r.raw.connection.sock, lambda: r.raw._fp.fp.raw._sock):
        try:
            sock = get()
        except AttributeError:
            continue
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return


def mf_api_host(host):
    from .reference import API_HOST
    return API_HOST.get(host, host)


def _lookup_creds(host, config):
    return authmod.credentials(host, config)


def _check_realm_host(realm_host, registry_host, loopback):
    """refuse a token realm on a loopback/link-local/private address unless the registry
    itself is local (an SSRF guard, as in go-containerregistry)"""
    import ipaddress
    try:
        ip = ipaddress.ip_address(realm_host.strip("[]"))
    except ValueError:
        return
    if (ip.is_loopback or ip.is_link_local or ip.is_private) and not loopback:
        reg = registry_host.rsplit(":", 1)[0].strip("[]")
        if reg != realm_host.strip("[]"):
            raise AuthError("authenticate to %s: refusing token realm on private address %s"
                            % (registry_host, realm_host))


_BUNDLES = {}


def _ca_bundle(cas):
    """requests wants one file: concatenate the certs.d CAs once per process"""
    key = tuple(cas)
    if key not in _BUNDLES:
        import tempfile
        fd, path = tempfile.mkstemp(prefix="pyimage-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as f:
            for c in cas:
                with open(c, "rb") as src:
                    f.write(src.read().rstrip(b"\n") + b"\n")
        import atexit
        atexit.register(lambda p=path: os.path.exists(p) and os.unlink(p))
        _BUNDLES[key] = path
    return _BUNDLES[key]
