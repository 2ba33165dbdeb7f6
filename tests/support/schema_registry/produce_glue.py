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

import argparse
import json
import os
import sys
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "..", "fixtures", "schema_registry"))
sys.path.insert(0, HERE)

import proto_util  # noqa: E402

import boto3  # noqa: E402
from confluent_kafka import Producer  # noqa: E402


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


def user(i, version):
    v = {"id": i, "name": f"name-{i}", "active": i % 2 == 0, "score": i * 0.5}
    if version == 2:
        v["email"] = f"user{i}@example.com"
    return v


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


def create_topic(bootstrap, topic, partitions):
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=10).values():
        try:
            future.result(15)
        except Exception as e:
            if not (e.args and isinstance(e.args[0], KafkaError) and e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--glue-endpoint", required=True, help="Glue API endpoint, e.g. moto's http://127.0.0.1:PORT")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--registry-name", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--format", required=True, choices=["avro", "protobuf", "json"])
    p.add_argument("--schema-version", type=int, default=1, choices=[1, 2])
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--key-format", default="string", choices=["string", "none", "avro", "protobuf", "json"])
    p.add_argument("--compression", default="none", choices=["none", "zlib"])
    p.add_argument("--partition", type=int)
    p.add_argument("--create-topic", type=int, metavar="PARTITIONS",
                   help="create the topic first with this many partitions (an existing topic is kept)")
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
    if args.key_format in ("avro", "protobuf", "json"):
        key_codec = GlueCodec(args.key_format, glue, args.registry_name, args.topic, True, 1, args.compression)

    if args.create_topic:
        create_topic(args.bootstrap, args.topic, args.create_topic)
    producer = Producer({
        "bootstrap.servers": args.bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
        "message.timeout.ms": 20000,
    })
    delivered, errors = {}, []

    def on_delivery(err, msg, index):
        if err is not None:
            errors.append(f"record {index}: {err}")
        else:
            delivered[index] = (msg.partition(), msg.offset())

    records, value_vid, key_vid = [], None, None
    for i in range(args.start, args.start + args.count):
        key_doc, key_bytes = None, None
        if args.key_format == "string":
            key_doc = f"key-{i}"
            key_bytes = key_doc.encode()
        elif key_codec is not None:
            key_doc = {"id": i}
            key_bytes, key_vid = key_codec(key_doc)
        doc = user(i, args.schema_version)
        value_bytes, value_vid = value_codec(doc)
        if args.bad == "unknown-version":
            value_bytes = value_bytes[:2] + uuid.UUID(int=i + 1).bytes + value_bytes[18:]
        elif args.bad == "bad-header-version":
            value_bytes = b"\x02" + value_bytes[1:]
        elif args.bad == "truncated":
            value_bytes = value_bytes[: 18 + max(1, (len(value_bytes) - 18) // 2)]
        kwargs = {"key": key_bytes, "value": value_bytes, "on_delivery": lambda e, m, i=i: on_delivery(e, m, i)}
        if args.partition is not None:
            kwargs["partition"] = args.partition
        producer.produce(args.topic, **kwargs)
        producer.poll(0)
        records.append({"index": i, "key": key_doc, "value": doc, "value_hex": value_bytes.hex()})
    remaining = producer.flush(30)
    if remaining or errors or len(delivered) != len(records):
        print(f"produce failed: {remaining} undelivered; {errors}", file=sys.stderr)
        sys.exit(1)
    for r in records:
        r["partition"], r["offset"] = delivered[r["index"]]

    print(json.dumps({
        "topic": args.topic,
        "format": args.format,
        "registry_name": args.registry_name,
        "registry_arn": registry_arn,
        "value_schema_name": value_codec.schema_name,
        "value_schema_version_id": str(value_vid),
        "key_schema_name": key_codec.schema_name if key_codec else None,
        "key_schema_version_id": str(key_vid) if key_vid else None,
        "records": records,
    }))


if __name__ == "__main__":
    main()
