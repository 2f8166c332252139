"""Credentials: Docker's config.json (auths, credsStore, credHelpers) and the
`docker-credential-*` helper protocol, plus WWW-Authenticate challenge parsing.

Lookup order for a registry host, like docker: credHelpers[host], then credsStore,
then auths[host] (also `https://host`, `http://host`, `host/v1/` spellings).  Docker
Hub's key is the historical `https://index.docker.io/v1/`.
"""
import base64
import json
import os
import re
import shutil
import subprocess

from .errors import AuthError, PyimageError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def config_path():
    d = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(d, "config.json")


def load_config(path=None):
    path = path or config_path()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise PyimageError("read %s: %s" % (path, e.strerror.lower())) from None
    try:
        cfg = json.loads(data or b"{}")
    except ValueError as e:
        raise PyimageError("parse %s: invalid json: %s" % (path, e)) from None
    if not isinstance(cfg, dict):
        raise PyimageError("parse %s: not a json object" % path)
    return cfg


def save_config(cfg, path=None):
    path = path or config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp.%d" % os.getpid()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f, indent="\t")
        f.write("\n")
    os.replace(tmp, path)


def config_key(host):
    return DOCKER_HUB_KEY if host in ("docker.io", "index.docker.io", "registry-1.docker.io") else host


def _keys_for(host):
    k = config_key(host)
    return [k, "https://" + host, "http://" + host, host + "/v1/", "https://%s/v1/" % host, "https://%s/v2/" % host]


def _helper(name, action, payload):
    exe = shutil.which("docker-credential-" + name)
    if not exe:
        raise AuthError("credentials for %s: helper docker-credential-%s not found in PATH" % (payload, name))
    try:
        p = subprocess.run([exe, action], input=payload.encode(), capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AuthError("credentials helper docker-credential-%s %s: %s" % (name, action, e)) from None
    return p


def helper_get(name, server):
    p = _helper(name, "get", server)
    out = p.stdout.decode(errors="replace").strip()
    if p.returncode != 0:
        # the protocol: "credentials not found in native keychain" means none stored
        if "not found" in (out + p.stderr.decode(errors="replace")).lower():
            return None
        raise AuthError("credentials helper docker-credential-%s get %s: %s"
                        % (name, server, (out or p.stderr.decode(errors="replace")).strip().splitlines()[-1:] or "failed"))
    try:
        obj = json.loads(out)
        user, secret = obj.get("Username") or "", obj.get("Secret") or ""
    except (ValueError, AttributeError):
        raise AuthError("credentials helper docker-credential-%s get: invalid json answer" % name) from None
    if not secret:
        return None
    return (user, secret)


def helper_store(name, server, user, secret):
    p = _helper(name, "store", json.dumps({"ServerURL": server, "Username": user, "Secret": secret}))
    if p.returncode != 0:
        raise AuthError("credentials helper docker-credential-%s store: %s"
                        % (name, (p.stdout or p.stderr).decode(errors="replace").strip()))


def helper_erase(name, server):
    _helper(name, "erase", server)


def credentials(host, cfg=None):
    """(user, secret) for a registry host, or None.  user "<token>" means an identity token"""
    if cfg is None:
        cfg = load_config()
    helpers = cfg.get("credHelpers") or {}
    for k in _keys_for(host):
        if k in helpers:
            return helper_get(helpers[k], k if k != host else host)
    auths = cfg.get("auths") or {}
    entry = None
    for k in _keys_for(host):
        if k in auths:
            entry = auths[k] or {}
            break
    if cfg.get("credsStore"):
        c = helper_get(cfg["credsStore"], config_key(host))
        if c:
            return c
    if entry:
        if entry.get("identitytoken"):
            return ("<token>", entry["identitytoken"])
        if entry.get("auth"):
            try:
                raw = base64.b64decode(entry["auth"]).decode()
                user, _, pw = raw.partition(":")
            except (ValueError, UnicodeDecodeError):
                raise AuthError("parse %s: auths.%s.auth is not base64 user:password" % (config_path(), host)) from None
            return (user, pw)
        if entry.get("username"):
            return (entry["username"], entry.get("password") or "")
    return None


def store_credentials(host, user, secret):
    cfg = load_config()
    key = config_key(host)
    helper = (cfg.get("credHelpers") or {}).get(key) or cfg.get("credsStore")
    auths = cfg.setdefault("auths", {})
    if helper:
        helper_store(helper, key, user, secret)
        auths[key] = {}
    else:
        auths[key] = {"auth": base64.b64encode(("%s:%s" % (user, secret)).encode()).decode()}
    save_config(cfg)


def erase_credentials(host):
    cfg = load_config()
    key = config_key(host)
    helper = (cfg.get("credHelpers") or {}).get(key) or cfg.get("credsStore")
    found = False
    if helper:
        helper_erase(helper, key)
        found = True
    auths = cfg.get("auths") or {}
    for k in _keys_for(host):
        if k in auths:
            del auths[k]
            found = True
    save_config(cfg)
    return found


_PARAM_RE = re.compile(r'\s*([a-zA-Z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_challenge(header):
    """'Bearer realm="x",service="y"' -> ("bearer", {"realm": "x", "service": "y"})"""
    if not header:
        return None, {}
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for m in _PARAM_RE.finditer(rest):
        val = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", val or "")
    return scheme.lower(), params
