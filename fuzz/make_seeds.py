#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/corpus/<name>_fuzzer/ (run from anywhere;
deterministic). Needs Debian's python3-protobuf and protoc (for the proto seeds).

  /usr/bin/python3 fuzz/make_seeds.py
"""
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target + "_fuzzer")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- GGUF: tiny hand-built files (format: engine/gguf/gguf_format.h) ----
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload


U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)


def gguf(version, kvs, tensors, align=32, data=b""):
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    out += b"".join(kvs)
    for name, ne, ttype, off in tensors:
        out += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<q", n) for n in ne)
        out += struct.pack("<IQ", ttype, off)
    pad = (-len(out)) % align
    return out + b"\0" * pad + data


all_types = [
    kv("general.architecture", STR, gstr("llama")),
    kv("a.u8", U8, struct.pack("<B", 7)),
    kv("a.i8", I8, struct.pack("<b", -7)),
    kv("a.u16", U16, struct.pack("<H", 700)),
    kv("a.i16", I16, struct.pack("<h", -700)),
    kv("a.u32", U32, struct.pack("<I", 70000)),
    kv("a.i32", I32, struct.pack("<i", -70000)),
    kv("a.f32", F32, struct.pack("<f", 1.5)),
    kv("a.bool", BOOL, b"\1"),
    kv("a.u64", U64, struct.pack("<Q", 1 << 40)),
    kv("a.i64", I64, struct.pack("<q", -(1 << 40))),
    kv("a.f64", F64, struct.pack("<d", 2.5)),
    kv("a.strs", ARR, struct.pack("<IQ", STR, 2) + gstr("x") + gstr("yz")),
    kv("a.f32s", ARR, struct.pack("<IQ", F32, 3) + struct.pack("<3f", 1, 2, 3)),
    kv("a.i32s", ARR, struct.pack("<IQ", I32, 2) + struct.pack("<2i", -1, 5)),
    kv("a.nested", ARR, struct.pack("<IQ", ARR, 1) + struct.pack("<IQ", U8, 2) + b"\1\2"),
]
f32_data = struct.pack("<8f", *range(8))
write("gguf", "v3_all_types_f32_tensor", gguf(3, all_types, [("t.weight", [4, 2], 0, 0)], data=f32_data))
write("gguf", "v2_empty", gguf(2, [], []))
write("gguf", "v3_two_tensors_align64",
      gguf(3, [kv("general.alignment", U32, struct.pack("<I", 64))],
           [("a", [8], 0, 0), ("b", [32], 1, 64)], align=64, data=b"\0" * 128))
write("gguf", "v3_tokenizer_keys",
      gguf(3, [kv("tokenizer.ggml.model", STR, gstr("gpt2")),
               kv("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, 3) + gstr("a") + gstr("b") + gstr("ab")),
               kv("tokenizer.ggml.merges", ARR, struct.pack("<IQ", STR, 1) + gstr("a b"))], []))

# ---- tokenizer: byte 0 = vocabulary (low 4 bits) + add_bos/parse_special/special ----
texts = [b"Hello world", b" leading and  double  spaces\n\ttabs", b"3.14159 1234567 numbers",
         "caf\u00e9 \u00fcber na\u00efve \u4f60\u597d \U0001f600".encode(),
         b"<|endoftext|>text<s></s>", b"don't I'll we've", b"\xff\xfe invalid utf8 \xc3",
         b"", b"    ", "\u2581already\u2581spm".encode()]
for v in range(4):
    for i, t in enumerate(texts):
        flags = [0x00, 0x10, 0x20, 0x70][i % 4]
        write("tokenizer", "v%d_%02d" % (v, i), bytes([v | flags]) + t)

# ---- proto seeds (validation, worker framing) ----
with tempfile.TemporaryDirectory() as tmp:
    subprocess.check_call(["protoc", "--proto_path=" + os.path.join(ROOT, "proto"),
                           "--python_out=" + tmp, "bitnet/v1/engine.proto"])
    subprocess.check_call(["protoc", "--proto_path=" + ROOT, "--python_out=" + tmp,
                           "cpp_ref_adapter/worker.proto"])
    sys.path.insert(0, tmp)
    from bitnet.v1 import engine_pb2 as v1
    from cpp_ref_adapter import worker_pb2 as w

    def val(kind, name, msg):
        write("validation", name, bytes([kind]) + msg.SerializeToString())

    r = v1.EvalLogitsRequest()
    r.input.text = "abc"
    val(0, "eval_text", r)
    r = v1.EvalLogitsRequest()
    r.input.ids.ids.extend([1, 5, 7, 9])
    r.mode = v1.EVAL_MODE_SEQUENTIAL
    r.output.kind = v1.LogitsOutput.TOP_K
    r.output.top_k = 5
    r.positions.kind = v1.Positions.LIST
    r.positions.list.extend([0, -1])
    val(0, "eval_ids_topk_positions", r)
    r = v1.EvalTraceRequest()
    r.input.ids.ids.extend([3, 4])
    r.layers.extend([0, 2])
    r.format = v1.FLOAT_FORMAT_F16
    val(1, "trace", r)
    g = v1.GenerateRequest()
    g.input.text = "hello"
    g.max_new_tokens = 8
    g.sampling.temperature = 0.7
    g.sampling.top_k = 40
    g.sampling.top_p = 0.9
    g.sampling.seed = 3
    g.stop_sequences.extend(["\n"])
    g.logprobs = True
    g.top_logprobs = 2
    val(2, "generate", g)
    d = v1.DetokenizeRequest()
    d.ids.extend([10, 20, 99])
    val(3, "detokenize", d)
    t = v1.TokenizeRequest()
    t.text = "tok"
    val(4, "tokenize", t)

    def frames(msgs):
        return b"".join(struct.pack("<I", len(m.SerializeToString())) + m.SerializeToString() for m in msgs)

    req = w.Request(id=1)
    req.tokenize.text = b"hi"
    req2 = w.Request(id=2)
    req2.eval_logits.ids.extend([1, 2, 3])
    write("worker_frame", "requests", bytes([0, 0]) + frames([req, req2]))
    write("worker_frame", "requests_small_limit", bytes([0, 1]) + frames([req2]))
    hello = w.Response(id=0)
    hello.hello.protocol_version = 1
    row = w.Response(id=2)
    row.logits_row.row = 0
    row.logits_row.logits_f32le = struct.pack("<4f", 0.5, 1, 2, 3)
    err = w.Response(id=3)
    err.error.code = 3
    err.error.message = "bad"
    tok = w.Response(id=4)
    tok.token.id = 5
    write("worker_frame", "responses", bytes([1, 0]) + frames([hello, row, err, tok]))
    write("worker_frame", "truncated", bytes([1, 0]) + frames([row])[:-3])
    write("worker_frame", "oversize_header", bytes([1, 2]) + struct.pack("<I", 1 << 20) + b"x")
print("seeds written to", CORPUS)
