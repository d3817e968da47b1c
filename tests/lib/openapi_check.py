#!/usr/bin/env python3
"""Checks amtacs-web's OpenAPI 3.1 document, and the answers tests received
against it (python3-jsonschema, JSON Schema Draft 2020-12 as OpenAPI 3.1 uses).

  openapi_check.py document DOC
      The document itself, as far as the Debian packages allow: openapi is
      3.1.x; info, paths and responses are there; every $ref resolves; every
      schema is a valid Draft 2020-12 schema (check_schema); path parameters
      are declared and required; operationIds are unique; security
      requirements name declared schemes.

  openapi_check.py answers DOC DIR
      Every answer h_web_req (tests/lib/web.sh) recorded in DIR: N.meta is
      "METHOD PATH STATUS CONTENT-TYPE", N.body the body, N.hdr the headers
      as curl -D wrote them. The operation is
      found by path template (a parameter must also match its schema's
      pattern, as the router's does) and method (HEAD: GET's, body not
      checked); the status and content type must be declared for it, and a
      JSON body must validate against the schema. A path no template takes
      must be a 404 problem "no such resource ...", a method a path does not
      take a 405 problem. Each header the document declares for the answer
      must be there when required, and every value of it must validate
      against its schema. text/plain and text/event-stream are checked for
      their content type only.

Prints one line per failure; exits 1 if there is any, 2 on a usage error.
"""
import json
import os
import re
import sys

import jsonschema

DIALECT = "https://json-schema.org/draft/2020-12/schema"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
V = jsonschema.Draft202012Validator


def pointer(doc, ref):
    """The value a local $ref ("#/a/b") names; KeyError if none."""
    if not ref.startswith("#"):
        raise KeyError("not a local reference: " + ref)
    node = doc
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(ref)
    return node


def deref(doc, node):
    """Follows an OpenAPI (non-schema) $ref chain."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = pointer(doc, node["$ref"])
        seen += 1
        if seen > 20:
            raise KeyError("a $ref loop")
    return node


def validator(doc, schema):
    """A Draft 2020-12 validator for one schema of the document, whose $refs
    (#/components/...) resolve against the document."""
    root = {"$schema": DIALECT, "components": doc.get("components", {}),
            "$defs": {"answer": schema}, "$ref": "#/$defs/answer"}
    return V(root)


# ---------------------------------------------------------------- the document

def walk(node, path=""):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, path + "/" + k.replace("~", "~0").replace("/", "~1"))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + "/" + str(i))


def check_document(doc):
    errs = []
    if not re.fullmatch(r"3\.1\.\d+", str(doc.get("openapi", ""))):
        errs.append("openapi is %r, not 3.1.x" % doc.get("openapi"))
    info = doc.get("info", {})
    for k in ("title", "version"):
        if not isinstance(info.get(k), str):
            errs.append("info.%s is missing" % k)
    if not isinstance(doc.get("paths"), dict):
        errs.append("paths is missing")
        return errs
    for where, node in walk(doc):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            try:
                pointer(doc, node["$ref"])
            except (KeyError, IndexError, ValueError):
                errs.append("#%s: $ref %s does not resolve" % (where, node["$ref"]))
    # every schema: the components' and each "schema" of a parameter, header or media type
    schemas = [("#/components/schemas/" + k, s)
               for k, s in doc.get("components", {}).get("schemas", {}).items()]
    for where, node in walk(doc):
        if where.startswith("/components/schemas/"):
            continue
        if isinstance(node, dict) and "schema" in node and isinstance(node["schema"], dict):
            schemas.append(("#%s/schema" % where, node["schema"]))
    for where, s in schemas:
        try:
            V.check_schema(s)
        except jsonschema.exceptions.SchemaError as e:
            errs.append("%s is not a valid Draft 2020-12 schema: %s" % (where, e.message))
    schemes = doc.get("components", {}).get("securitySchemes", {})
    for name, s in schemes.items():
        if s.get("type") not in ("apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"):
            errs.append("security scheme %s has no valid type" % name)
    op_ids = {}
    for p, item in doc["paths"].items():
        if not p.startswith("/"):
            errs.append("path %s does not start with /" % p)
        item = deref(doc, item)
        for m, op in item.items():
            if m not in METHODS:
                continue
            label = "%s %s" % (m.upper(), p)
            oid = op.get("operationId")
            if oid in op_ids:
                errs.append("%s: operationId %s is also %s's" % (label, oid, op_ids[oid]))
            op_ids[oid] = label
            resp = op.get("responses")
            if not isinstance(resp, dict) or not resp:
                errs.append("%s has no responses" % label)
                resp = {}
            for st, r in resp.items():
                if not re.fullmatch(r"[1-5](\d\d|XX)|default", st):
                    errs.append("%s: %s is not a status" % (label, st))
                r = deref(doc, r)
                if not isinstance(r.get("description"), str):
                    errs.append("%s: response %s has no description" % (label, st))
            params = [deref(doc, x) for x in item.get("parameters", []) + op.get("parameters", [])]
            declared = {x.get("name") for x in params if x.get("in") == "path"}
            for x in params:
                if x.get("in") not in ("query", "header", "path", "cookie"):
                    errs.append("%s: parameter %s has no valid 'in'" % (label, x.get("name")))
                if x.get("in") == "path" and x.get("required") is not True:
                    errs.append("%s: path parameter %s must be required" % (label, x.get("name")))
            for name in re.findall(r"\{([^}]+)\}", p):
                if name not in declared:
                    errs.append("%s does not declare its path parameter %s" % (label, name))
            for req in op.get("security", doc.get("security", [])):
                for name in req:
                    if name not in schemes:
                        errs.append("%s: security scheme %s is not declared" % (label, name))
    return errs


# ---------------------------------------------------------------- answers

def server_prefix(doc):
    url = (doc.get("servers") or [{"url": ""}])[0]["url"]
    return re.sub(r"^[a-z]+://[^/]*", "", url).rstrip("/")


def templates(doc):
    """(regex, template, path item) for each path, a parameter matching its
    schema's pattern when it has one."""
    out = []
    for p, item in doc["paths"].items():
        item = deref(doc, item)
        pats = {}
        ops = [op for m, op in item.items() if m in METHODS]
        for x in item.get("parameters", []) + [y for op in ops for y in op.get("parameters", [])]:
            x = deref(doc, x)
            if x.get("in") == "path":
                pat = deref(doc, x.get("schema", {})).get("pattern")
                if pat:
                    pats[x["name"]] = pat.lstrip("^").rstrip("$")
        rx, pos = "", 0
        for mt in re.finditer(r"\{([^}]+)\}", p):
            rx += re.escape(p[pos:mt.start()])
            rx += "(?:%s)" % pats.get(mt.group(1), "[^/]+")
            pos = mt.end()
        rx += re.escape(p[pos:])
        out.append((re.compile(rx), p, item))
    return out


def essence(ctype):
    return ctype.split(";")[0].strip().lower()


def is_json(ctype):
    e = essence(ctype)
    return e == "application/json" or e.endswith("+json")


def validate_body(doc, schema, body, what):
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return ["%s: the body is not JSON (%s): %.200r" % (what, e, body)]
    errs = []
    for e in sorted(validator(doc, schema).iter_errors(value), key=lambda e: list(e.path)):
        loc = "/".join(str(x) for x in e.absolute_path)
        errs.append("%s: at /%s: %s" % (what, loc, e.message))
    if errs:
        errs.append("%s: the body was %.300s" % (what, body.decode("utf-8", "replace").rstrip()))
    return errs


def problem_schema(doc, status):
    return {"allOf": [{"$ref": "#/components/schemas/Problem"}],
            "properties": {"status": {"const": status}}}


def check_answer(doc, tmpls, prefix, meta, body, headers=None):
    parts = meta.rstrip("\n").split(" ", 3)
    if len(parts) < 3:
        return ["malformed meta %r" % meta]
    method, path, status = parts[0].upper(), parts[1], parts[2]
    ctype = parts[3] if len(parts) > 3 else ""
    what = "%s %s -> %s %s" % (method, path, status, ctype)
    if not status.isdigit() or status == "000":
        return ["%s: no answer" % what]
    local = path[len(prefix):] if path.startswith(prefix + "/") else None
    item = None
    for rx, tmpl, it in tmpls:
        if local is not None and rx.fullmatch(local):
            item, what = it, "%s (%s%s)" % (what, prefix, tmpl)
            break
    if item is None or (method != "HEAD" and method.lower() not in item) or \
            (method == "HEAD" and "get" not in item and "head" not in item):
        want = 404 if item is None else 405
        if int(status) != want or essence(ctype) != "application/problem+json":
            return ["%s: %s, which the document does not have, must be %d "
                    "application/problem+json" % (what, "a path" if item is None else "a method",
                                                  want)]
        errs = validate_body(doc, problem_schema(doc, want), body, what)
        if want == 404 and not errs and \
                not json.loads(body.decode())["detail"].startswith("no such resource"):
            errs.append("%s: a path not in the document must be 'no such resource'" % what)
        return errs
    op = item.get(method.lower()) or item.get("get")
    if status in ("404", "405") and is_json(ctype):
        try:
            detail = json.loads(body.decode("utf-8")).get("detail", "")
        except (UnicodeDecodeError, ValueError, AttributeError):
            detail = ""
        if status == "405" or str(detail).startswith("no such resource"):
            return ["%s: the document has this operation, but the server has no such route: %s"
                    % (what, detail)]
    responses = op.get("responses", {})
    r = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
    if r is None:
        return ["%s: status %s is not declared (declared: %s)"
                % (what, status, ", ".join(sorted(responses)))]
    r = deref(doc, r)
    errs = check_headers(doc, r, headers, what)
    content = r.get("content", {})
    if not content:
        if body and method != "HEAD":
            errs.append("%s: the document declares no body, but one came: %.200r" % (what, body))
        return errs
    media = content.get(ctype)
    if media is None:
        matches = [v for k, v in content.items() if essence(k) == essence(ctype)]
        media = matches[0] if matches else None
    if media is None:
        return errs + ["%s: content type %r is not declared for %s (declared: %s)"
                       % (what, ctype, status, ", ".join(content))]
    if method == "HEAD" or not is_json(ctype) or "schema" not in media:
        return errs
    return errs + validate_body(doc, media["schema"], body, what)


def parse_headers(raw):
    """{lower-case name: [values]} of the last header block curl -D wrote
    (an interim 100 Continue comes before the answer's)."""
    blocks = re.split(r"\r?\n\r?\n", raw.strip())
    out = {}
    for line in blocks[-1].splitlines()[1:] if blocks else []:
        name, sep, value = line.partition(":")
        if sep:
            out.setdefault(name.strip().lower(), []).append(value.strip())
    return out


def check_headers(doc, response, headers, what):
    """The headers the document declares for this response: there when
    required, each value valid against its schema. None: not recorded."""
    if headers is None:
        return []
    errs = []
    for name, h in response.get("headers", {}).items():
        h = deref(doc, h)
        values = headers.get(name.lower(), [])
        if not values:
            if h.get("required"):
                errs.append("%s: the required header %s is missing" % (what, name))
            continue
        v = validator(doc, deref(doc, h.get("schema", {})))
        for value in values:
            for e in v.iter_errors(value):
                errs.append("%s: header %s: %r: %s" % (what, name, value, e.message))
    return errs


def check_answers(doc, directory):
    tmpls = templates(doc)
    prefix = server_prefix(doc)
    errs, n = [], 0
    metas = sorted((f for f in os.listdir(directory) if f.endswith(".meta")),
                   key=lambda f: int(f.split(".")[0]) if f.split(".")[0].isdigit() else 0)
    for f in metas:
        n += 1
        base = os.path.join(directory, f[:-5])
        with open(base + ".meta") as fh:
            meta = fh.read()
        try:
            with open(base + ".body", "rb") as fh:
                body = fh.read()
        except FileNotFoundError:
            body = b""
        try:
            with open(base + ".hdr", encoding="latin-1") as fh:
                headers = parse_headers(fh.read())
        except FileNotFoundError:
            headers = None
        errs += ["answer %s: %s" % (f[:-5], e)
                 for e in check_answer(doc, tmpls, prefix, meta, body, headers)]
    return n, errs


def main(argv):
    if len(argv) == 3 and argv[1] == "document":
        with open(argv[2]) as fh:
            doc = json.load(fh)
        errs = check_document(doc)
        for e in errs:
            print(e)
        if not errs:
            n = sum(1 for it in doc["paths"].values() for m in it if m in METHODS)
            print("the document is OpenAPI %s with %d operations; every $ref resolves and "
                  "every schema is valid Draft 2020-12" % (doc["openapi"], n))
        return 1 if errs else 0
    if len(argv) == 4 and argv[1] == "answers":
        with open(argv[2]) as fh:
            doc = json.load(fh)
        doc_errs = check_document(doc)
        if doc_errs:
            for e in doc_errs:
                print("the document: " + e)
            return 1
        n, errs = check_answers(doc, argv[3])
        for e in errs:
            print(e)
        if n == 0:
            print("no answers in %s" % argv[3])
            return 1
        if not errs:
            print("%d answers validate against the document" % n)
        return 1 if errs else 0
    sys.stderr.write("usage: openapi_check.py document DOC | answers DOC DIR\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
