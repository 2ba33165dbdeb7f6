"""Produces AWS-Glue-Schema-Registry-encoded records to Kafka, registering the schemas in a Glue
registry (moto's Glue API in the tests), for the Rust tests to run as a subprocess.

Avro and JSON Schema go through the `aws-glue-schema-registry` package's own KafkaSerializer
(its SchemaRegistryClient over a boto3 Glue client with endpoint_url). That package has no
Protobuf support, so Protobuf is encoded here the way awslabs/aws-glue-schema-registry's Java
ProtobufSerializer does: the 18-byte header, then the message index as an unsigned varint
(the message's position among all messages of the file sorted by full name; User is 1, after
esmd.test.Envelope), then the message bytes; its schema is registered with boto3 directly.

Glue wire format (awslabs/aws-glue-schema-registry SerializationDataEncoder):
  byte 0      header version, 3
  byte 1      compression: 0 none, 5 zlib (java.util.zip.Deflater default: zlib-wrapped deflate)
  bytes 2-17  schema version id, a UUID, most significant byte first
  bytes 18-   the data, compressed whole when byte 1 is 5

Records are the same as produce.py's (fields from the index i; schema version 2 adds email);
the schema name is <topic>-value / <topic>-key (the package's topic_name_strategy), in registry
--registry-name (created when missing).

Prints one JSON object on stdout:
  {"topic": T, "format": F, "registry_name": R, "registry_arn": ARN,
   "value_schema_name": "T-value", "value_schema_version_id": UUID,
   "key_schema_name": ... | null, "key_schema_version_id": UUID | null,
   "records": [{"index", "partition", "offset", "key", "value", "value_hex"}]}

Usage:
  produce_glue.py --bootstrap 127.0.0.1:9092 --glue-endpoint http://127.0.0.1:5000 \
      --registry-name reg --topic t --format avro|json|protobuf [--schema-version 1|2]
      [--count N] [--start I] [--key-format string|none|avro|json|protobuf]
      [--compression none|zlib] [--partition P] [--region us-east-1]
      [--bad unknown-version|bad-header-version|truncated] [--create-topic PARTITIONS]
"""

import os
import sys
import uuid
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import proto_util  # noqa: E402
from kafka_util import (  # noqa: E402
    REGISTRY_KEY_FORMATS, add_placement_args, add_record_args, arg_parser, fixture, print_result, produce,
)

import boto3  # noqa: E402


def glue_header(version_id, compressed):
    return bytes([3, 5 if compressed else 0]) + version_id.bytes


class GlueCodec:
    def __init__(self, fmt, glue, registry_name, topic, is_key, version, compression):
        self.fmt, self.glue, self.registry_name, self.compression = fmt, glue, registry_name, compression
        self.schema_name = f"{topic}-{'key' if is_key else 'value'}"
        base = "key" if is_key else f"user_v{version}"
        if fmt in ("avro", "json"):
            from aws_schema_registry import SchemaRegistryClient
            from aws_schema_registry.serde import KafkaSerializer

            if fmt == "avro":
                from aws_schema_registry.avro import AvroSchema

                self.schema = AvroSchema(fixture(f"{base}.avsc"))
            else:
                from aws_schema_registry.jsonschema import JsonSchema

                self.schema = JsonSchema(fixture(f"{base}.schema.json"))
            client = SchemaRegistryClient(glue, registry_name=registry_name, wait_interval_seconds=0.2)
            self.serializer = KafkaSerializer(client, is_key=is_key)
            self.topic = topic
        elif fmt == "protobuf":
            text = fixture(f"{base}.proto")
            self.fdp = proto_util.compile_proto(text, f"{base}.proto")
            full_name = "esmd.test.Key" if is_key else "esmd.test.User"
            self.cls = proto_util.message_class(self.fdp, full_name)
            self.index = proto_util.glue_message_index(self.fdp, full_name)
            self.version_id = self.register_protobuf(text)
        else:
            raise SystemExit(f"unknown format {fmt}")

    def register_protobuf(self, text):
        sid = {"RegistryName": self.registry_name, "SchemaName": self.schema_name}
        try:
            return uuid.UUID(self.glue.get_schema_by_definition(SchemaId=sid, SchemaDefinition=text)["SchemaVersionId"])
        except self.glue.exceptions.EntityNotFoundException:
            pass
        try:
            self.glue.get_schema(SchemaId=sid)
        except self.glue.exceptions.EntityNotFoundException:
            r = self.glue.create_schema(
                RegistryId={"RegistryName": self.registry_name}, SchemaName=self.schema_name,
                DataFormat="PROTOBUF", Compatibility="BACKWARD", SchemaDefinition=text,
            )
            return uuid.UUID(r["SchemaVersionId"])
        return uuid.UUID(self.glue.register_schema_version(SchemaId=sid, SchemaDefinition=text)["SchemaVersionId"])

    def __call__(self, doc):
        """(bytes, schema version id)"""
        if self.fmt == "protobuf":
            data = proto_util.uvarint(self.index) + self.cls(**doc).SerializeToString()
            version_id = self.version_id
        else:
            encoded = self.serializer.serialize(self.topic, (doc, self.schema))
            version_id = uuid.UUID(bytes=encoded[2:18])
            data = encoded[18:]
        if self.compression == "zlib":
            return glue_header(version_id, True) + zlib.compress(data), version_id
        return glue_header(version_id, False) + data, version_id


def main():
    p = arg_parser(__doc__)
    p.add_argument("--glue-endpoint", required=True, help="Glue API endpoint, e.g. moto's http://127.0.0.1:PORT")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--registry-name", required=True)
    add_record_args(p)
    p.add_argument("--compression", default="none", choices=["none", "zlib"])
    add_placement_args(p)
    p.add_argument("--bad", choices=["unknown-version", "bad-header-version", "truncated"])
    args = p.parse_args()

    glue = boto3.client(
        "glue", endpoint_url=args.glue_endpoint, region_name=args.region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )
    try:
        registry_arn = glue.get_registry(RegistryId={"RegistryName": args.registry_name})["RegistryArn"]
    except glue.exceptions.EntityNotFoundException:
        registry_arn = glue.create_registry(RegistryName=args.registry_name)["RegistryArn"]

    value_codec = GlueCodec(args.format, glue, args.registry_name, args.topic, False, args.schema_version, args.compression)
    key_codec = None
    if args.key_format in REGISTRY_KEY_FORMATS:
        key_codec = GlueCodec(args.key_format, glue, args.registry_name, args.topic, True, 1, args.compression)

    value_vid, key_vid = None, None

    def encode_key(doc):
        nonlocal key_vid
        key_bytes, key_vid = key_codec(doc)
        return key_bytes

    def encode_value(i, doc):
        nonlocal value_vid
        value_bytes, value_vid = value_codec(doc)
        if args.bad == "unknown-version":
            value_bytes = value_bytes[:2] + uuid.UUID(int=i + 1).bytes + value_bytes[18:]
        elif args.bad == "bad-header-version":
            value_bytes = b"\x02" + value_bytes[1:]
        elif args.bad == "truncated":
            value_bytes = value_bytes[: 18 + max(1, (len(value_bytes) - 18) // 2)]
        return value_bytes

    records = produce(args, encode_key if key_codec is not None else None, encode_value)

    print_result(args, {
        "registry_name": args.registry_name,
        "registry_arn": registry_arn,
        "value_schema_name": value_codec.schema_name,
        "value_schema_version_id": str(value_vid),
        "key_schema_name": key_codec.schema_name if key_codec else None,
        "key_schema_version_id": str(key_vid) if key_vid else None,
    }, records)

if __name__ == "__main__":
    main()
