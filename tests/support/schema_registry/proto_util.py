"""Protobuf helpers shared by the fake Confluent registry and the producers.

- compile_proto: .proto text -> FileDescriptorProto, with protoc from grpcio-tools (no network,
  the well-known types come with the wheel).
- print_proto: FileDescriptorProto -> canonical .proto text. A Confluent registry stores and
  serves Protobuf schemas as .proto text even when a client (confluent-kafka's Python
  ProtobufSerializer does) registers them as a base64 FileDescriptorProto.
- message_class: a generated-style message class for one message of a compiled file.
- confluent_message_indexes / glue_message_index: where a message sits in its file, as the two
  serializers write it.
"""

import os
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto

_SCALARS = {
    F.TYPE_DOUBLE: "double",
    F.TYPE_FLOAT: "float",
    F.TYPE_INT64: "int64",
    F.TYPE_UINT64: "uint64",
    F.TYPE_INT32: "int32",
    F.TYPE_FIXED64: "fixed64",
    F.TYPE_FIXED32: "fixed32",
    F.TYPE_BOOL: "bool",
    F.TYPE_STRING: "string",
    F.TYPE_BYTES: "bytes",
    F.TYPE_UINT32: "uint32",
    F.TYPE_SFIXED32: "sfixed32",
    F.TYPE_SFIXED64: "sfixed64",
    F.TYPE_SINT32: "sint32",
    F.TYPE_SINT64: "sint64",
}


class ProtoError(Exception):
    pass


def compile_proto(text, name="default.proto", dependencies=None):
    """Compiles .proto `text` (file name `name`) with protoc; `dependencies` maps the names of
    imported files to their text. Returns the FileDescriptorProto of `name`."""
    import grpc_tools

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    with tempfile.TemporaryDirectory() as d:
        for dep_name, dep_text in (dependencies or {}).items():
            path = os.path.join(d, dep_name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(dep_text)
        path = os.path.join(d, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        out = os.path.join(d, "out.pb")
        # protoc prints its errors on stderr; run it in a child so they can be returned.
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from grpc_tools import protoc; sys.exit(protoc.main(sys.argv))",
             f"-I{d}", f"-I{include}", f"--descriptor_set_out={out}", name],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            lines = [
                line.replace(d + os.sep, "")
                for line in (proc.stderr or proc.stdout).splitlines()
                if line.strip() and not line.startswith(("WARNING: All log messages", "W0000", "I0000"))
            ]
            raise ProtoError("\n".join(lines) or f"protoc exited {proc.returncode}")
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as f:
            fds.ParseFromString(f.read())
    for fdp in fds.file:
        if fdp.name == name:
            return fdp
    raise ProtoError(f"protoc produced no descriptor for {name}")


def _type_name(field):
    if field.type in _SCALARS:
        return _SCALARS[field.type]
    return field.type_name  # fully qualified, leading dot: valid .proto syntax


def _print_message(msg, indent, syntax, out):
    pad = "  " * indent
    out.append(f"{pad}message {msg.name} {{")
    map_entries = {f".{n.name}": n for n in msg.nested_type if n.options.map_entry}
    printed_oneofs = set()
    for field in msg.field:
        if field.HasField("oneof_index") and not field.proto3_optional:
            idx = field.oneof_index
            if idx in printed_oneofs:
                continue
            printed_oneofs.add(idx)
            out.append(f"{pad}  oneof {msg.oneof_decl[idx].name} {{")
            for f2 in msg.field:
                if f2.HasField("oneof_index") and f2.oneof_index == idx and not f2.proto3_optional:
                    out.append(f"{pad}    {_type_name(f2)} {f2.name} = {f2.number};")
            out.append(f"{pad}  }}")
            continue
        entry = None
        if field.type == F.TYPE_MESSAGE and field.label == F.LABEL_REPEATED:
            entry = next((e for k, e in map_entries.items() if field.type_name.endswith(f".{msg.name}{k}")), None)
        if entry is not None:
            k, v = entry.field[0], entry.field[1]
            out.append(f"{pad}  map<{_type_name(k)}, {_type_name(v)}> {field.name} = {field.number};")
            continue
        if field.label == F.LABEL_REPEATED:
            label = "repeated "
        elif field.label == F.LABEL_REQUIRED:
            label = "required "
        elif syntax == "proto2" or field.proto3_optional:
            label = "optional "
        else:
            label = ""
        opts = []
        if field.HasField("default_value"):
            dv = field.default_value
            if field.type in (F.TYPE_STRING, F.TYPE_BYTES):
                dv = '"' + dv.replace("\\", "\\\\").replace('"', '\\"') + '"'
            opts.append(f"default = {dv}")
        if field.options.HasField("packed"):
            opts.append(f"packed = {'true' if field.options.packed else 'false'}")
        suffix = f" [{', '.join(opts)}]" if opts else ""
        out.append(f"{pad}  {label}{_type_name(field)} {field.name} = {field.number}{suffix};")
    for nested in msg.nested_type:
        if not nested.options.map_entry:
            _print_message(nested, indent + 1, syntax, out)
    for enum in msg.enum_type:
        _print_enum(enum, indent + 1, out)
    for r in msg.reserved_range:
        out.append(f"{pad}  reserved {r.start}" + (f" to {r.end - 1};" if r.end - 1 != r.start else ";"))
    for n in msg.reserved_name:
        out.append(f'{pad}  reserved "{n}";')
    out.append(f"{pad}}}")


def _print_enum(enum, indent, out):
    pad = "  " * indent
    out.append(f"{pad}enum {enum.name} {{")
    if enum.options.allow_alias:
        out.append(f"{pad}  option allow_alias = true;")
    for v in enum.value:
        out.append(f"{pad}  {v.name} = {v.number};")
    out.append(f"{pad}}}")


def print_proto(fdp):
    """Canonical .proto text of a FileDescriptorProto (messages, enums, maps, oneofs, imports;
    services and custom options are left out)."""
    syntax = fdp.syntax or "proto2"
    out = [f'syntax = "{syntax}";']
    if fdp.package:
        out.append(f"package {fdp.package};")
    for dep in fdp.dependency:
        out.append(f'import "{dep}";')
    for msg in fdp.message_type:
        out.append("")
        _print_message(msg, 0, syntax, out)
    for enum in fdp.enum_type:
        out.append("")
        _print_enum(enum, 0, out)
    return "\n".join(out) + "\n"


def message_class(fdp, full_name, dependencies=()):
    """A message class for `full_name` of the compiled file `fdp` (its imports in
    `dependencies`, as FileDescriptorProtos), in a pool of its own."""
    pool = descriptor_pool.DescriptorPool()
    from google.protobuf import (  # noqa: WPS433 the well-known types a schema may import
        any_pb2, duration_pb2, empty_pb2, struct_pb2, timestamp_pb2, wrappers_pb2,
    )
    for wk in (any_pb2, duration_pb2, empty_pb2, struct_pb2, timestamp_pb2, wrappers_pb2):
        wk_fdp = descriptor_pb2.FileDescriptorProto()
        wk.DESCRIPTOR.CopyToProto(wk_fdp)
        if wk_fdp.name in fdp.dependency:
            pool.Add(wk_fdp)
    for dep in dependencies:
        pool.Add(dep)
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))


def confluent_message_indexes(fdp, full_name):
    """Confluent's message-index path of `full_name` in `fdp`: [i] for the i-th top-level
    message, [i, j] for its j-th nested message, and so on."""
    prefix = f"{fdp.package}." if fdp.package else ""
    parts = full_name[len(prefix):].split(".")
    path, messages = [], list(fdp.message_type)
    for part in parts:
        idx = next(i for i, m in enumerate(messages) if m.name == part)
        path.append(idx)
        messages = list(messages[idx].nested_type)
    return path


def glue_message_index(fdp, full_name):
    """AWS Glue's message index of `full_name`: every message of the file, top-level and
    nested (breadth first), sorted by full name; the index in that list (MessageIndexFinder in
    awslabs/aws-glue-schema-registry)."""
    prefix = f"{fdp.package}." if fdp.package else ""
    names, queue = [], [(prefix + m.name, m) for m in fdp.message_type]
    while queue:
        name, m = queue.pop(0)
        names.append(name)
        queue.extend((f"{name}.{n.name}", n) for n in m.nested_type)
    names.sort()
    return names.index(full_name)


def zigzag_varint(n):
    """Kafka/Confluent varint: zigzag, then base-128 little-endian groups."""
    z = (n << 1) ^ (n >> 63)
    return uvarint(z)


def uvarint(z):
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)
