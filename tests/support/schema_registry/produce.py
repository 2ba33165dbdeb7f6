"""Produces schema-registry-encoded records to Kafka with confluent-kafka's own serializers
(AvroSerializer, ProtobufSerializer, JSONSerializer against a Confluent-API registry), for the
Rust tests to run as a subprocess.

Every field is a function of the record's index i, so a test can check each decoded field:

  value (User, tests/fixtures/schema_registry/user_v{1,2}.{avsc,proto,schema.json}):
    id = i, name = "name-<i>", active = (i % 2 == 0), score = i * 0.5
    schema version 2 adds: email = "user<i>@example.com"
  key, by --key-format:
    string   the UTF-8 bytes "key-<i>", no registry
    none     no key
    avro | protobuf | json   a Key record {id: i} (key.{avsc,proto,schema.json}), subject <topic>-key

Subjects follow the default TopicNameStrategy: <topic>-value and <topic>-key. The serializers
register the schemas themselves (auto.register.schemas). Protobuf User is message index [1] of
its file (wire bytes 0x02 0x02 after the schema id), Protobuf Key is [0] (the single byte 0x00).

--bad MODE writes records the registry cannot vouch for instead (value only; the key as
--key-format says): unknown-id (magic 0, schema id 2147483647, then a valid body), no-magic (a
plain JSON body with no header), truncated (a valid header and a cut-off body), wrong-schema
(the id of the registered schema, but a body that does not match it: for avro, a string length
past the end of the record; for json, a document that fails the JSON Schema (id a string,
required fields missing); for protobuf, field 2 (string) sent with the varint wire type - note
that Java and C++ protobuf parse a wire-type mismatch as an unknown field and so accept it,
prost and Go reject it).

Prints one JSON object on stdout:
  {"topic": T, "format": F, "value_subject": "T-value", "value_schema_id": N,
   "key_subject": "T-key" | null, "key_schema_id": N | null,
   "records": [{"index": i, "partition": p, "offset": o, "key": <key as JSON or string or null>,
                "value": {...}, "value_hex": "<the bytes written>"}]}

Usage:
  produce.py --bootstrap 127.0.0.1:9092 --registry http://127.0.0.1:8081 --topic t \
             --format avro|protobuf|json [--schema-version 1|2] [--count N] [--start I]
             [--key-format string|none|avro|protobuf|json] [--partition P]
             [--registry-user U --registry-password P] [--registry-ca CA.pem]
             [--registry-cert CERT.pem --registry-key KEY.pem] [--bad MODE] [--create-topic PARTITIONS]
"""

import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import proto_util  # noqa: E402
from kafka_util import (  # noqa: E402
    REGISTRY_KEY_FORMATS, add_placement_args, add_record_args, arg_parser, fixture, print_result, produce, user,
)

from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402


class Codec:
    """Serializer for one field (key or value) in one format."""

    def __init__(self, fmt, registry, kind, version):
        self.fmt, self.kind = fmt, kind  # kind: "user" | "key"
        base = f"user_v{version}" if kind == "user" else "key"
        conf = {"auto.register.schemas": True}
        if fmt == "avro":
            from confluent_kafka.schema_registry.avro import AvroSerializer

            self.serializer = AvroSerializer(registry, fixture(f"{base}.avsc"), conf=conf)
        elif fmt == "json":
            from confluent_kafka.schema_registry.json_schema import JSONSerializer

            self.serializer = JSONSerializer(fixture(f"{base}.schema.json"), registry, conf=conf)
        elif fmt == "protobuf":
            from confluent_kafka.schema_registry.protobuf import ProtobufSerializer

            self.fdp = proto_util.compile_proto(fixture(f"{base}.proto"), f"{base}.proto")
            self.full_name = "esmd.test.User" if kind == "user" else "esmd.test.Key"
            self.cls = proto_util.message_class(self.fdp, self.full_name)
            conf["use.deprecated.format"] = False
            self.serializer = ProtobufSerializer(self.cls, registry, conf=conf)
        else:
            raise SystemExit(f"unknown format {fmt}")

    def obj(self, doc):
        if self.fmt == "protobuf":
            return self.cls(**doc)
        return doc

    def __call__(self, doc, ctx):
        return self.serializer(self.obj(doc), ctx)


def bad_value(mode, codec, topic, i, version):
    ctx = SerializationContext(topic, MessageField.VALUE)
    good = codec(user(i, version), ctx)
    header_len = 5
    schema_id = struct.unpack(">I", good[1:5])[0]
    body = good[header_len:]
    if mode == "unknown-id":
        return b"\x00" + struct.pack(">I", 2147483647) + body, schema_id
    if mode == "no-magic":
        return json.dumps(user(i, version)).encode(), schema_id
    if mode == "truncated":
        return good[: header_len + max(1, len(body) // 2)], schema_id
    if mode == "wrong-schema":
        header = b"\x00" + struct.pack(">I", schema_id)
        if codec.fmt == "avro":
            # id (zigzag int), then where the name string's length should be: a huge length.
            return header + proto_util.zigzag_varint(i) + proto_util.zigzag_varint(1 << 40), schema_id
        if codec.fmt == "json":
            return header + json.dumps({"id": f"not-an-integer-{i}"}).encode(), schema_id
        # protobuf: message index [1], then field 2 (name, a string) sent as a varint.
        return header + b"\x02\x02" + bytes([0x10]) + proto_util.uvarint(i), schema_id
    raise SystemExit(f"unknown --bad mode {mode}")


def main():
    p = arg_parser(__doc__)
    p.add_argument("--registry", required=True, help="Confluent-API registry URL")
    add_record_args(p)
    add_placement_args(p)
    p.add_argument("--registry-user")
    p.add_argument("--registry-password")
    p.add_argument("--registry-ca")
    p.add_argument("--registry-cert")
    p.add_argument("--registry-key")
    p.add_argument("--bad", choices=["unknown-id", "no-magic", "truncated", "wrong-schema"])
    args = p.parse_args()

    sr_conf = {"url": args.registry}
    if args.registry_user:
        sr_conf["basic.auth.user.info"] = f"{args.registry_user}:{args.registry_password or ''}"
    if args.registry_ca:
        sr_conf["ssl.ca.location"] = args.registry_ca
    if args.registry_cert:
        sr_conf["ssl.certificate.location"] = args.registry_cert
        sr_conf["ssl.key.location"] = args.registry_key
    registry = SchemaRegistryClient(sr_conf)

    value_codec = Codec(args.format, registry, "user", args.schema_version)
    key_codec = Codec(args.key_format, registry, "key", 1) if args.key_format in REGISTRY_KEY_FORMATS else None

    value_id, key_id = None, None

    def encode_key(doc):
        nonlocal key_id
        key_bytes = key_codec(doc, SerializationContext(args.topic, MessageField.KEY))
        key_id = struct.unpack(">I", key_bytes[1:5])[0]
        return key_bytes

    def encode_value(i, doc):
        nonlocal value_id
        if args.bad:
            value_bytes, value_id = bad_value(args.bad, value_codec, args.topic, i, args.schema_version)
        else:
            value_bytes = value_codec(doc, SerializationContext(args.topic, MessageField.VALUE))
            value_id = struct.unpack(">I", value_bytes[1:5])[0]
        return value_bytes

    records = produce(args, encode_key if key_codec is not None else None, encode_value)

    print_result(args, {
        "value_subject": f"{args.topic}-value",
        "value_schema_id": value_id,
        "key_subject": f"{args.topic}-key" if key_codec is not None else None,
        "key_schema_id": key_id,
    }, records)

if __name__ == "__main__":
    main()
