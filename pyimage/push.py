"""Push an image from the store to a registry: blobs the registry lacks (HEAD first),
then the manifest (children of an index first), as stored, byte for byte."""
import json

from . import manifest as mf
from . import reference
from .errors import StoreError


def push(store, client, src_desc, ref, progress=None, what=None):
    what = what or "push %s" % ref
    repo = ref.repo

    def push_manifest(desc, tag):
        raw = store.read_blob(desc["digest"])
        obj = json.loads(raw)
        mt = obj.get("mediaType") or desc.get("mediaType")
        if mt in mf.INDEX_TYPES:
            for child in obj.get("manifests") or []:
                if store.has_blob(child["digest"]):
                    push_manifest(child, child["digest"])
        else:
            blobs = [obj["config"]] + list(obj.get("layers") or [])
            for i, b in enumerate(blobs):
                if not store.has_blob(b["digest"], b["size"]):
                    raise StoreError("%s: blob %s is not in the store" % (what, b["digest"]))
                key = ("push", b["digest"])
                if progress:
                    progress.add(key, "blob %s" % b["digest"][7:19], b["size"])
                if client.blob_exists(repo, b["digest"], what):
                    if progress:
                        progress.state(key, "exists")
                    continue
                path = store.blob_path(b["digest"])
                client.upload_blob(repo, b["digest"], b["size"], lambda p=path: open(p, "rb"), what)
                if progress:
                    progress.state(key, "pushed")
        client.put_manifest(repo, tag, raw, mt, what)
    push_manifest(src_desc, ref.digest or ref.tag)


def push_ref(store, puller, src_text, dest_text=None, progress=None):
    img = puller.local(src_text)
    if img is None:
        raise StoreError("push %s: not in store %s" % (src_text, store.root))
    dest = reference.parse(dest_text or img.ref)
    names = [src_text, img.ref]
    desc = store.lookup(names) or img.desc
    if dest.digest and dest.digest != desc["digest"]:
        # e.g. a Docker manifest pulled by digest: the store keeps its OCI rewrite
        # (umoci and skopeo's oci: transport want OCI), whose digest differs
        raise StoreError("push %s: the stored manifest has digest %s, not the one in the destination "
                         "(converted to OCI on pull?): push to a tag instead" % (dest, desc["digest"]))
    client = puller.client(dest)
    push(store, client, desc, dest, progress)
    return dest
