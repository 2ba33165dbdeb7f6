"""A small Confluent Schema Registry (REST API v1) for the tests, in memory.

No Confluent-API registry server installs from the package registries this project can reach
(Confluent's own is a Maven/Docker artifact, karapace is not published on PyPI, Apicurio is
Maven-only), so the tests use this one. It implements what confluent-kafka's serializers and an
AWS-Lambda-style consumer use, with Confluent's response shapes and error codes:

  POST   /subjects/{s}/versions          register -> {"id": N}  (same schema again: same id)
  POST   /subjects/{s}                   look up  -> {"subject","id","version","schema",...}
  GET    /schemas/ids/{id}               -> {"schema", "schemaType" (not for AVRO), "references" (if any)}
  GET    /schemas/ids/{id}/versions      -> [{"subject","version"}]
  GET    /schemas/ids/{id}/subjects      -> ["subject"]
  GET    /schemas/types                  -> ["AVRO","JSON","PROTOBUF"]
  GET    /subjects                       -> ["subject"]
  GET    /subjects/{s}/versions          -> [1,2]
  GET    /subjects/{s}/versions/{v|latest}[/schema]
  DELETE /subjects/{s}[/versions/{v}]
  GET/PUT /config[/{s}], GET /mode
  ?format=serialized on the schema GETs returns Protobuf as a base64 FileDescriptorProto.

Schemas are stored canonical, as a real registry does: Avro and JSON Schema as compact JSON,
Protobuf as .proto text (a base64 FileDescriptorProto from confluent-kafka's
ProtobufSerializer is converted). Invalid schemas are refused with 422/42201.

Test controls (not Confluent API; always without authentication):
  GET  /_stats                           -> {"requests": {"GET /schemas/ids/7": n, "POST /subjects/{s}/versions": n, ...}}
  POST /_control/fail {"status": 503, "count": 2, "paths": "/schemas/"}
                                         the next `count` API requests (whose path starts with
                                         `paths`, default all) answer `status`; count -1: until reset
  POST /_control/hang {"paths": "/schemas/ids/"}
                                         API requests whose path starts with `paths` get no answer
                                         until released, as from a registry that hangs; the
                                         others (a producer registering its schema) are served
  POST /_control/release                 ends the hang: the held requests are answered
  POST /_control/reset                   clears failures, hangs and counters

Usage:
  python confluent_registry.py [--host 127.0.0.1] [--port 0] [--basic-auth USER:PASS]
         [--tls-cert CERT.pem --tls-key KEY.pem [--client-ca CA.pem]]
Prints one JSON line on stdout once it accepts connections, e.g.
  {"url": "http://127.0.0.1:41234", "port": 41234, "pid": 123}
and serves until killed (SIGTERM/SIGKILL). Port 0 picks a free port, so there is no race.
"""

import argparse
import base64
import binascii
import json
import os
import re
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CT = "application/vnd.schemaregistry.v1+json"


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _canonical_json(text, kind):
    try:
        return json.loads(text)
    except (TypeError, ValueError) as e:
        raise ApiError(422, 42201, f"Invalid schema: {kind} schema is not JSON: {e}")


class Registry:
    def __init__(self):
        self.lock = threading.Lock()
        self.schemas = []  # id - 1 -> {"schemaType", "schema", "references", "fdp"}
        self.subjects = {}  # subject -> [(version, id, deleted)]
        self.config = {"compatibilityLevel": "BACKWARD"}
        self.subject_config = {}
        self.stats = {}
        self.fail = None  # {"status", "count", "paths"}
        self.hang = None  # {"paths", "released": threading.Event}

    # -- canonical forms -------------------------------------------------------------------

    def canonical(self, schema_type, text, references):
        if not isinstance(text, str):
            raise ApiError(422, 42201, "Invalid schema: 'schema' must be a string")
        if schema_type == "AVRO":
            parsed = _canonical_json(text, "Avro")
            try:
                import fastavro

                named = {}
                for ref in references:
                    ref_schema = self.by_subject_version(ref["subject"], ref["version"])
                    fastavro.parse_schema(json.loads(ref_schema["schema"]), named_schemas=named)
                fastavro.parse_schema(parsed, named_schemas=named)
            except ApiError:
                raise
            except Exception as e:  # fastavro raises several types
                raise ApiError(422, 42201, f"Invalid schema: {e}")
            return json.dumps(parsed, separators=(",", ":")), None
        if schema_type == "JSON":
            parsed = _canonical_json(text, "JSON")
            try:
                import jsonschema

                jsonschema.validators.validator_for(parsed).check_schema(parsed)
            except Exception as e:
                raise ApiError(422, 42201, f"Invalid schema: {e}")
            return json.dumps(parsed, separators=(",", ":")), None
        if schema_type == "PROTOBUF":
            import proto_util
            from google.protobuf import descriptor_pb2

            deps = {}
            for ref in references:
                ref_schema = self.by_subject_version(ref["subject"], ref["version"])
                deps[ref["name"]] = ref_schema["schema"]
            fdp = None
            if "message" not in text and "syntax" not in text and "enum" not in text:
                try:
                    raw = base64.b64decode(text, validate=True)
                    fdp = descriptor_pb2.FileDescriptorProto()
                    fdp.ParseFromString(raw)
                except (binascii.Error, ValueError, Exception):
                    fdp = None
            try:
                if fdp is None:
                    fdp = proto_util.compile_proto(text, "default.proto", deps)
                printed = proto_util.print_proto(fdp)
                # The printed text must compile to the same messages (checks the printer too).
                proto_util.compile_proto(printed, fdp.name or "default.proto", deps)
            except proto_util.ProtoError as e:
                raise ApiError(422, 42201, f"Invalid schema: {e}")
            return printed, fdp
        raise ApiError(422, 42201, f"Invalid schema type {schema_type}")

    # -- lookups (lock held by callers that mutate) ------------------------------------------

    def live_versions(self, subject):
        versions = [v for v in self.subjects.get(subject, []) if not v[2]]
        if not versions:
            raise ApiError(404, 40401, f"Subject '{subject}' not found.")
        return versions

    def by_subject_version(self, subject, version):
        versions = self.live_versions(subject)
        if version in ("latest", "-1", -1):
            v = versions[-1]
        else:
            try:
                n = int(version)
            except ValueError:
                raise ApiError(422, 42202, f"The specified version '{version}' is not a valid version id.")
            match = [x for x in versions if x[0] == n]
            if not match:
                raise ApiError(404, 40402, f"Version {version} not found.")
            v = match[0]
        s = self.schemas[v[1] - 1]
        return {"subject": subject, "version": v[0], "id": v[1], **s}

    def find_id(self, schema_type, canonical, references):
        for i, s in enumerate(self.schemas):
            if s["schemaType"] == schema_type and s["schema"] == canonical and s["references"] == references:
                return i + 1
        return None

    # -- API ---------------------------------------------------------------------------------

    def register(self, subject, body):
        schema_type = body.get("schemaType") or "AVRO"
        references = body.get("references") or []
        with self.lock:
            canonical, fdp = self.canonical(schema_type, body.get("schema"), references)
            sid = self.find_id(schema_type, canonical, references)
            if sid is None:
                self.schemas.append({"schemaType": schema_type, "schema": canonical, "references": references, "fdp": fdp})
                sid = len(self.schemas)
            versions = self.subjects.setdefault(subject, [])
            existing = [v for v in versions if v[1] == sid and not v[2]]
            if not existing:
                versions.append((max((v[0] for v in versions), default=0) + 1, sid, False))
            return {"id": sid}

    def lookup(self, subject, body):
        schema_type = body.get("schemaType") or "AVRO"
        references = body.get("references") or []
        with self.lock:
            versions = self.live_versions(subject)
            canonical, _ = self.canonical(schema_type, body.get("schema"), references)
            sid = self.find_id(schema_type, canonical, references)
            match = [v for v in versions if v[1] == sid]
            if sid is None or not match:
                raise ApiError(404, 40403, "Schema not found")
            return self.render(self.by_subject_version(subject, match[0][0]), with_subject=True)

    @staticmethod
    def render(s, with_subject=False, fmt=None):
        out = {}
        if with_subject:
            out.update({"subject": s["subject"], "version": s["version"], "id": s["id"]})
        schema = s["schema"]
        if fmt == "serialized" and s["schemaType"] == "PROTOBUF" and s.get("fdp") is not None:
            schema = base64.b64encode(s["fdp"].SerializeToString()).decode("ascii")
        out["schema"] = schema
        if s["schemaType"] != "AVRO":
            out["schemaType"] = s["schemaType"]
        if s["references"]:
            out["references"] = s["references"]
        return out

    def schema_by_id(self, sid):
        try:
            n = int(sid)
        except ValueError:
            raise ApiError(404, 40403, f"Schema {sid} not found")
        with self.lock:
            if n < 1 or n > len(self.schemas):
                raise ApiError(404, 40403, f"Schema {sid} not found")
            return self.schemas[n - 1]

    def id_versions(self, sid):
        self.schema_by_id(sid)
        n = int(sid)
        with self.lock:
            return [{"subject": s, "version": v[0]} for s, vs in sorted(self.subjects.items()) for v in vs if v[1] == n and not v[2]]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    registry = None
    basic_auth = None  # "Basic base64" expected header value

    def log_message(self, fmt, *args):  # quiet: one line per request on stderr
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", CT)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, 400, "Unrecognized request body: not JSON")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        url = urlparse(self.path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        reg = self.registry
        try:
            if path.startswith("/_"):
                return self.control(method, path)
            # Schema ids stay in the key: tests count fetches per id.
            pattern = re.sub(r"^/subjects/[^/]+", "/subjects/{s}", path)
            pattern = re.sub(r"/versions/[^/]+", "/versions/{v}", pattern)
            pattern = re.sub(r"^/config/[^/]+", "/config/{s}", pattern)
            key = f"{method} {pattern}"
            with reg.lock:
                reg.stats[key] = reg.stats.get(key, 0) + 1
                fail = reg.fail
                if fail and fail["count"] != 0 and path.startswith(fail.get("paths") or "/"):
                    if fail["count"] > 0:
                        fail["count"] -= 1
                    status = fail["status"]
                else:
                    status = None
                hang = reg.hang if reg.hang and path.startswith(reg.hang["paths"] or "/") else None
            if hang is not None:
                hang["released"].wait(600)
            if status is not None:
                return self.send_json(status, {"error_code": status * 100 if status < 1000 else status, "message": "injected failure"})
            if self.basic_auth and self.headers.get("Authorization") != self.basic_auth:
                return self.send_json(401, {"error_code": 401, "message": "Unauthorized"})
            self.send_json(*self.route(method, path, query))
        except ApiError as e:
            self.send_json(e.status, {"error_code": e.code, "message": e.message})
        except Exception as e:  # a bug here must show up as a 500, not a hang
            self.send_json(500, {"error_code": 50001, "message": f"{type(e).__name__}: {e}"})

    def control(self, method, path):
        reg = self.registry
        if method == "GET" and path == "/_stats":
            with reg.lock:
                return self.send_json(200, {"requests": dict(reg.stats), "schemas": len(reg.schemas)})
        if method == "POST" and path == "/_control/fail":
            b = self.body()
            with reg.lock:
                reg.fail = {"status": int(b.get("status", 503)), "count": int(b.get("count", -1)), "paths": b.get("paths")}
            return self.send_json(200, reg.fail)
        if method == "POST" and path == "/_control/hang":
            b = self.body()
            with reg.lock:
                reg.hang = {"paths": b.get("paths"), "released": threading.Event()}
            return self.send_json(200, {"paths": reg.hang["paths"]})
        if method == "POST" and path == "/_control/release":
            with reg.lock:
                if reg.hang:
                    reg.hang["released"].set()
                reg.hang = None
            return self.send_json(200, {})
        if method == "POST" and path == "/_control/reset":
            with reg.lock:
                if reg.hang:
                    reg.hang["released"].set()
                reg.fail, reg.hang, reg.stats = None, None, {}
            return self.send_json(200, {})
        raise ApiError(404, 404, "HTTP 404 Not Found")

    def route(self, method, path, query):
        reg = self.registry
        parts = [unquote(p) for p in path.strip("/").split("/")] if path != "/" else []
        fmt = query.get("format")
        if not parts:
            return 200, {}
        if parts == ["schemas", "types"] and method == "GET":
            return 200, ["JSON", "PROTOBUF", "AVRO"]
        if parts[0] == "schemas" and len(parts) >= 3 and parts[1] == "ids" and method == "GET":
            if len(parts) == 3:
                return 200, reg.render(reg.schema_by_id(parts[2]), fmt=fmt)
            if parts[3:] == ["versions"]:
                return 200, reg.id_versions(parts[2])
            if parts[3:] == ["subjects"]:
                return 200, sorted({v["subject"] for v in reg.id_versions(parts[2])})
            if parts[3:] == ["schema"]:
                return 200, json.loads(reg.schema_by_id(parts[2])["schema"]) if reg.schema_by_id(parts[2])["schemaType"] != "PROTOBUF" else reg.schema_by_id(parts[2])["schema"]
        if parts[0] == "subjects":
            if len(parts) == 1 and method == "GET":
                with reg.lock:
                    return 200, sorted(s for s, vs in reg.subjects.items() if any(not v[2] for v in vs))
            subject = parts[1]
            if len(parts) == 2:
                if method == "POST":
                    return 200, reg.lookup(subject, self.body())
                if method == "DELETE":
                    with reg.lock:
                        versions = reg.live_versions(subject)
                        reg.subjects[subject] = [(v[0], v[1], True) for v in reg.subjects[subject]]
                        return 200, [v[0] for v in versions]
            if parts[2:3] == ["versions"]:
                if len(parts) == 3 and method == "POST":
                    return 200, reg.register(subject, self.body())
                if len(parts) == 3 and method == "GET":
                    with reg.lock:
                        return 200, [v[0] for v in reg.live_versions(subject)]
                if len(parts) >= 4:
                    with reg.lock:
                        s = reg.by_subject_version(subject, parts[3])
                        if method == "DELETE":
                            reg.subjects[subject] = [(v[0], v[1], v[2] or v[0] == s["version"]) for v in reg.subjects[subject]]
                            return 200, s["version"]
                    if method == "GET" and len(parts) == 4:
                        return 200, reg.render(s, with_subject=True, fmt=fmt)
                    if method == "GET" and parts[4:] == ["schema"]:
                        return 200, json.loads(s["schema"]) if s["schemaType"] != "PROTOBUF" else s["schema"]
        if parts[0] == "config":
            if method == "GET":
                if len(parts) == 1:
                    return 200, reg.config
                with reg.lock:
                    if parts[1] in reg.subject_config:
                        return 200, reg.subject_config[parts[1]]
                raise ApiError(404, 40408, f"Subject '{parts[1]}' does not have subject-level compatibility configured")
            if method == "PUT":
                b = self.body()
                level = b.get("compatibility") or b.get("compatibilityLevel") or "BACKWARD"
                with reg.lock:
                    if len(parts) == 1:
                        reg.config = {"compatibilityLevel": level}
                    else:
                        reg.subject_config[parts[1]] = {"compatibilityLevel": level}
                return 200, {"compatibility": level}
        if parts == ["mode"] and method == "GET":
            return 200, {"mode": "READWRITE"}
        raise ApiError(404, 404, "HTTP 404 Not Found")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--basic-auth", help="USER:PASSWORD required on every API request")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate chain (PEM)")
    p.add_argument("--tls-key", help="private key of --tls-cert (PEM)")
    p.add_argument("--client-ca", help="require client certificates signed by this CA (PEM): mutual TLS")
    args = p.parse_args()

    Handler.registry = Registry()
    if args.basic_auth:
        Handler.basic_auth = "Basic " + base64.b64encode(args.basic_auth.encode()).decode()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    scheme = "http"
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.client_ca)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    port = server.server_address[1]
    print(json.dumps({"url": f"{scheme}://{args.host}:{port}", "port": port, "pid": os.getpid()}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
