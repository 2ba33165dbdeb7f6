"""Kafka helpers shared by the producers (produce.py, produce_glue.py): everything but the
registry.

- fixture: the text of a file in tests/fixtures/schema_registry.
- user: the value record for index i (id, name, active, score; schema version 2 adds email).
- arg_parser / add_record_args / add_placement_args: the command-line options both producers
  take (--bootstrap; --topic --format --schema-version --count --start --key-format;
  --partition --create-topic), added in pieces so each producer keeps its own options in order.
- REGISTRY_KEY_FORMATS: the --key-format values whose key is a registry-encoded Key record.
- create_topic: creates a topic, keeping one that already exists.
- produce: writes the records (creating the topic first with --create-topic), waits for their
  delivery and returns them with their partitions and offsets; exits 1 when any is not delivered.
- print_result: the JSON object the producers print on stdout.
"""

import argparse
import json
import os
import sys

from confluent_kafka import Producer

FIXTURES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "schema_registry"))

REGISTRY_KEY_FORMATS = ("avro", "protobuf", "json")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


def user(i, version):
    v = {"id": i, "name": f"name-{i}", "active": i % 2 == 0, "score": i * 0.5}
    if version == 2:
        v["email"] = f"user{i}@example.com"
    return v


def arg_parser(doc):
    """A parser showing `doc` as its description, with --bootstrap."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True)
    return p


def add_record_args(p):
    """--topic, --format, --schema-version, --count, --start, --key-format."""
    p.add_argument("--topic", required=True)
    p.add_argument("--format", required=True, choices=["avro", "protobuf", "json"])
    p.add_argument("--schema-version", type=int, default=1, choices=[1, 2])
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--key-format", default="string", choices=["string", "none", *REGISTRY_KEY_FORMATS])


def add_placement_args(p):
    """--partition, --create-topic."""
    p.add_argument("--partition", type=int)
    p.add_argument("--create-topic", type=int, metavar="PARTITIONS",
                   help="create the topic first with this many partitions (an existing topic is kept)")


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


def produce(args, encode_key, encode_value):
    """Produces records args.start .. args.start + args.count - 1 to args.topic (args.partition
    when given), after creating the topic when args.create_topic is set.

    The key, by args.key_format: "string" is the bytes "key-<i>"; otherwise, when `encode_key`
    is not None, the Key record {"id": i} as encode_key(doc) encodes it; else no key. The value
    is user(i, args.schema_version) as encode_value(i, doc) encodes it.

    Returns [{"index", "key", "value", "value_hex", "partition", "offset"}], once every record
    is delivered; exits 1 (the reason on stderr) when one is not."""
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

    records = []
    for i in range(args.start, args.start + args.count):
        key_doc, key_bytes = None, None
        if args.key_format == "string":
            key_doc = f"key-{i}"
            key_bytes = key_doc.encode()
        elif encode_key is not None:
            key_doc = {"id": i}
            key_bytes = encode_key(key_doc)
        doc = user(i, args.schema_version)
        value_bytes = encode_value(i, doc)
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
    return records


def print_result(args, fields, records):
    """Prints {"topic", "format", <fields, in order>, "records"} as one line of JSON."""
    print(json.dumps({"topic": args.topic, "format": args.format, **fields, "records": records}))
