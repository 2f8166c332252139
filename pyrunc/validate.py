"""Check OCI runtime documents (config.json, state, features) against oci-specs/.

Two layers, both reported as `(path, reason)` pairs such as
``("process.args", "must be a non-empty array")``:

* the JSON Schemas in ``oci-specs/runtime-spec/<version>/`` (types, required fields,
  enumerations), evaluated with jsonschema;
* `semantic_problems()`: rules the spec states with MUST that a schema cannot express
  (duplicate namespace or rlimit types, the root directory existing, burst <= quota).

jsonschema (with referencing and rpds) costs about 140 ms to import, so it is imported
inside `schema_problems()` only; importing this module is cheap and pulls in nothing
beyond `os`.  create/run never call the schema layer: only `pyrunc validate` and the
tests do.
"""
import os

SPEC_VERSION = "1.3.0"
KINDS = ("config", "config-linux", "state", "features", "features-linux")

_validators = {}


def schema_dir(version=SPEC_VERSION):
    """oci-specs/runtime-spec/<version>: $PYRUNC_OCI_SPECS, else next to the package."""
    base = os.environ.get("PYRUNC_OCI_SPECS")
    if not base:
        base = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "oci-specs")
    return os.path.join(base, "runtime-spec", version)


def _validator(kind):
    v = _validators.get(kind)
    if v is not None:
        return v
    import json

    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    d = schema_dir()
    resources = []
    try:
        names = sorted(n for n in os.listdir(d) if n.endswith(".schema.json"))
    except OSError as err:
        raise OSError(err.errno, "schema directory %s: %s" % (d, os.strerror(err.errno))) from None
    docs = {}
    for name in names:
        with open(os.path.join(d, name), encoding="utf-8") as f:
            doc = json.load(f)
        docs[name[:-len(".schema.json")]] = doc
        resources.append((doc["$id"], Resource.from_contents(doc)))
    if kind not in docs:
        raise ValueError("no schema %s.schema.json in %s" % (kind, d))
    # a registry holding every file: $refs between them resolve locally, and nothing
    # is ever retrieved (the $ids use the reserved .invalid domain on purpose)
    registry = Registry().with_resources(resources)
    v = Draft202012Validator(docs[kind], registry=registry)
    _validators[kind] = v
    return v


# ---------------------------------------------------------------- paths and reasons

def format_path(parts):
    """["process", "args", 0] -> process.args[0]; odd keys are quoted: sysctl["net.ipv4.ip_forward"]"""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += "[%d]" % p
        elif p and (p[0].isalpha() or p[0] == "_") and all(c.isalnum() or c == "_" for c in p):
            out += ("." if out else "") + p
        else:
            out += '["%s"]' % p.replace("\\", "\\\\").replace('"', '\\"')
    return out or "(root)"


_ARTICLE = {"object": "an object", "array": "an array", "string": "a string", "integer": "an integer",
            "number": "a number", "boolean": "a boolean", "null": "null"}


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _choices(values, limit=24):
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def _reason(err):
    """One lowercase phrase for a jsonschema error (path handled by the caller)."""
    kw = err.validator
    val = err.validator_value
    schema = err.schema if isinstance(err.schema, dict) else {}
    if "x-reason" in schema and kw not in ("type", "required"):
        return schema["x-reason"]
    if kw == "type":
        types = val if isinstance(val, list) else [val]
        return "must be %s, not %s" % (" or ".join(_ARTICLE.get(t, t) for t in types),
                                       _json_type(err.instance))
    if kw == "enum":
        return "%s is not one of %s" % (_short(err.instance), _choices(val))
    if kw == "const":
        return "must be %s" % _short(val)
    if kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        lo = schema.get("minimum")
        hi = schema.get("maximum")
        if lo is not None and hi is not None:
            return "%s is out of range %d..%d" % (_short(err.instance), lo, hi)
        if kw == "exclusiveMinimum":
            return "must be greater than %s" % val
        if kw == "exclusiveMaximum":
            return "must be less than %s" % val
        return "must be %s %s" % (">=" if kw == "minimum" else "<=", val)
    if kw == "minItems":
        return "must be a non-empty array" if val == 1 else "must have at least %d items" % val
    if kw == "maxItems":
        return "must have at most %d items" % val
    if kw == "minLength":
        return "must not be empty" if val == 1 else "must be at least %d characters" % val
    if kw == "maxLength":
        return "must be at most %d characters" % val
    if kw == "pattern":
        return "%s does not match %s" % (_short(err.instance), val)
    if kw == "uniqueItems":
        return "must not contain duplicates"
    if kw in ("anyOf", "oneOf"):
        return "matches none of the allowed forms"
    return err.message[:1].lower() + err.message[1:]


def _short(value):
    import json

    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _explain(err):
    """Yield (path parts, reason) for one jsonschema error, expanding the vague ones."""
    path = list(err.absolute_path)
    kw = err.validator
    schema = err.schema if isinstance(err.schema, dict) else {}
    if "propertyNames" in err.schema_path:
        # the error is about a key; jsonschema leaves the path at the parent object
        yield path + [err.instance], "key " + (
            schema["x-reason"] if "x-reason" in schema else _reason(err))
        return
    if kw == "required":
        inst = err.instance if isinstance(err.instance, dict) else {}
        for name in err.validator_value:
            if name not in inst:
                yield path + [name], "is required"
        return
    if kw == "dependentRequired":
        inst = err.instance if isinstance(err.instance, dict) else {}
        for name, needs in err.validator_value.items():
            if name in inst:
                missing = [n for n in needs if n not in inst]
                if missing:
                    yield path + [name], "requires %s too" % " and ".join(missing)
        return
    if kw in ("unevaluatedProperties", "additionalProperties") and val_is_false(err):
        inst = err.instance if isinstance(err.instance, dict) else {}
        known = schema.get("properties", {})
        for name in inst:
            if name not in known:
                yield path + [name], "is not defined by runtime-spec %s" % SPEC_VERSION
        return
    if kw in ("anyOf", "oneOf") and "x-reason" not in schema and err.context:
        # e.g. `null or an object`: the branches whose type does not even match say
        # nothing useful; report what the others found inside the value
        here = len(err.absolute_path)
        inner = [e for e in err.context
                 if not (e.validator == "type" and len(e.absolute_path) == here)]
        if inner:
            for e in inner:
                yield from _explain(e)
            return
    yield path, _reason(err)


def val_is_false(err):
    return err.validator_value is False


def _sort_key(parts):
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in parts)


def schema_problems(doc, kind="config"):
    """Schema violations of a parsed document, sorted by path, without duplicates."""
    v = _validator(kind)
    found = {}
    for err in v.iter_errors(doc):
        for parts, reason in _explain(err):
            found.setdefault((tuple(_sort_key(parts)), reason), (format_path(parts), reason))
    return [found[k] for k in sorted(found)]


# ---------------------------------------------------------------- semantic rules

def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def semantic_problems(cfg, bundle=None):
    """MUST-level rules of config.md / config-linux.md that a schema cannot state.

    Only reads the parts that have the right types (the schema reports the rest), so it
    is safe on any parsed JSON.  `bundle` enables the checks against the file system.
    """
    out = []
    if not isinstance(cfg, dict):
        return out
    version = cfg.get("ociVersion")
    if isinstance(version, str) and version.split(".", 1)[0].isdigit() \
            and version.split(".", 1)[0] != "1":
        # compatibility holds within a major version only (config.md)
        out.append(("ociVersion", "runtime-spec %s is not supported, only 1.x" % version))

    root = _dict(cfg.get("root"))
    if bundle is not None and isinstance(root.get("path"), str) and root["path"]:
        rootfs = os.path.join(bundle, root["path"])
        if not os.path.isdir(rootfs):
            why = "no such directory" if not os.path.lexists(rootfs) else "not a directory"
            out.append(("root.path", "%s: %s" % (rootfs, why)))

    process = _dict(cfg.get("process"))
    seen = {}
    for i, rl in enumerate(_list(process.get("rlimits"))):
        t = _dict(rl).get("type")
        if isinstance(t, str):
            if t in seen:
                out.append((format_path(["process", "rlimits", i, "type"]),
                            "duplicate rlimit %s (first at rlimits[%d])" % (t, seen[t])))
            else:
                seen[t] = i

    linux = _dict(cfg.get("linux"))
    seen = {}
    for i, ns in enumerate(_list(linux.get("namespaces"))):
        t = _dict(ns).get("type")
        if isinstance(t, str):
            if t in seen:
                out.append((format_path(["linux", "namespaces", i, "type"]),
                            "duplicate namespace %s (first at namespaces[%d])" % (t, seen[t])))
            else:
                seen[t] = i

    cpu = _dict(_dict(linux.get("resources")).get("cpu"))
    quota, burst = cpu.get("quota"), cpu.get("burst")
    if isinstance(quota, int) and isinstance(burst, int) and not isinstance(quota, bool) \
            and quota > 0 and burst > quota:
        out.append(("linux.resources.cpu.burst", "%d is larger than quota %d" % (burst, quota)))
    return out


# ---------------------------------------------------------------- bundles

def load_json(source):
    """Parse a JSON file (a path or a binary file object); raise OSError, or
    ValueError("line L column C: why")."""
    import json

    if hasattr(source, "read"):
        data = source.read()
    else:
        with open(source, "rb") as f:
            data = f.read()
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError("byte %d: not utf-8" % err.start) from None
    except json.JSONDecodeError as err:
        raise ValueError("line %d column %d: %s" % (err.lineno, err.colno,
                                                    err.msg[:1].lower() + err.msg[1:])) from None


def check_document(doc, kind="config", bundle=None):
    """All problems of a parsed document: schema first, then the semantic rules."""
    problems = schema_problems(doc, kind)
    if kind == "config":
        seen = set(problems)
        problems += [p for p in semantic_problems(doc, bundle) if p not in seen]
    return problems
