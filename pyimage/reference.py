"""Image references with Docker's normalisation rules.

`busybox` -> `docker.io/library/busybox:latest`; a first component is a registry host
only if it has a `.` or a `:` or is `localhost`; `index.docker.io` folds into
`docker.io`, which is reached through `registry-1.docker.io` (only for requests).
A digest (`name@sha256:...`, also `name:tag@sha256:...`) wins over the tag.
No short-name search lists (containers-registries.conf): Docker's rules only.
"""
import re

from .errors import ReferenceError_

DEFAULT_HOST = "docker.io"
API_HOST = {"docker.io": "registry-1.docker.io"}
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(r"^%s(?:/%s)*$" % (_COMPONENT, _COMPONENT))
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_HOST_RE = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                      r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$")
LOOPBACK_HOSTS = ("localhost", "127.", "[::1]")


class Reference:
    __slots__ = ("host", "repo", "tag", "digest")

    def __init__(self, host, repo, tag=None, digest=None):
        self.host, self.repo, self.tag, self.digest = host, repo, tag, digest

    @property
    def api_host(self):
        return API_HOST.get(self.host, self.host)

    @property
    def is_loopback(self):
        h = self.host.rsplit(":", 1)[0] if not self.host.endswith("]") else self.host
        return h == "localhost" or h.startswith("127.") or h == "[::1]" or h.endswith(".localhost")

    @property
    def name(self):
        """host/repo without tag or digest"""
        return "%s/%s" % (self.host, self.repo)

    def with_digest(self, digest):
        return Reference(self.host, self.repo, None, digest)

    def __str__(self):
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def __repr__(self):
        return "Reference(%r)" % str(self)

    def __eq__(self, other):
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


def parse(text):
    """parse and normalise REF; raises ReferenceError_ with a one-line reason"""
    orig = text
    if not text or text != text.strip():
        raise ReferenceError_("parse reference %r: empty or surrounded by spaces" % orig)
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise ReferenceError_("parse reference %r: invalid digest %r" % (orig, digest))
        if digest.startswith("sha256:") and not re.match(r"^sha256:[a-f0-9]{64}$", digest):
            raise ReferenceError_("parse reference %r: a sha256 digest is 64 lowercase hex digits" % orig)
    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1:]
        if not _TAG_RE.match(tag):
            raise ReferenceError_("parse reference %r: invalid tag %r" % (orig, tag))
    first, _, rest = text.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        host, path = first, rest
        if not _HOST_RE.match(host):
            raise ReferenceError_("parse reference %r: invalid registry host %r" % (orig, host))
    else:
        host, path = DEFAULT_HOST, text
    if host == "index.docker.io":
        host = DEFAULT_HOST
    if host == DEFAULT_HOST and "/" not in path:
        path = "library/" + path
    if not _PATH_RE.match(path):
        if path.lower() != path and _PATH_RE.match(path.lower()):
            raise ReferenceError_("parse reference %r: repository name must be lowercase" % orig)
        raise ReferenceError_("parse reference %r: invalid repository name %r" % (orig, path))
    if len(host) + 1 + len(path) > 255:
        raise ReferenceError_("parse reference %r: name longer than 255 characters" % orig)
    if tag is None and digest is None:
        tag = "latest"
    if digest is not None:
        tag = None  # the digest wins; a tag next to it is informational only
    return Reference(host, path, tag, digest)
