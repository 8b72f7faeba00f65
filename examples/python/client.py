#!/usr/bin/env python3
"""A bitnet.v1 client that uses nothing of bitparity but the .proto file.

It talks to any bitnet.v1.Engine server (bitnet-native-server, bitnet-cpp-server)
with Debian's python3-grpcio and python3-protobuf. The message and stub modules
are generated from proto/bitnet/v1/engine.proto at build time (build/python/), by
protoc's own --python_out and grpc's Python plugin (Debian: protobuf-compiler-grpc).

    bitnet-native-server --model tiny-b158.gguf &
    /usr/bin/python3 examples/python/client.py --stubs build/python \\
        --prompt "The quick brown fox" --max-new-tokens 16

What it does: GetModelInfo; Generate (greedy unless --temperature); EvalLogits of
the prompt twice: every position with no logits (the next-token log-probabilities
give NLL and perplexity), and the last position in full (decoded from the packed
little-endian float32 bytes, top 5 shown). With --check it verifies what it
received (sizes, argmax, counts) and exits 1 on any mismatch.
"""
import argparse
import array
import math
import os
import sys


def load_stubs(stubs_dir):
    if stubs_dir:
        sys.path.insert(0, os.path.abspath(stubs_dir))
    try:
        from bitnet.v1 import engine_pb2, engine_pb2_grpc  # noqa: F401
    except ImportError as e:
        sys.exit(f"cannot import the generated bitnet.v1 modules from {stubs_dir!r}: {e}\n"
                 "build the project first (they are written to <build>/python)")
    return engine_pb2, engine_pb2_grpc


def make_channel(grpc, args):
    options = [("grpc.max_receive_message_length", 256 << 20),
               ("grpc.max_send_message_length", 256 << 20)]
    if not args.tls_ca:
        return grpc.insecure_channel(args.address, options=options)

    def read(path):
        with open(path, "rb") as f:
            return f.read()
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(args.tls_ca),
        private_key=read(args.tls_key) if args.tls_key else None,
        certificate_chain=read(args.tls_cert) if args.tls_cert else None)
    return grpc.secure_channel(args.address, creds, options=options)


def floats_le(raw):
    """Packed little-endian float32 bytes -> list of floats."""
    values = array.array("f")
    values.frombytes(raw)
    if sys.byteorder != "little":
        values.byteswap()
    return values


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", default="127.0.0.1:50051")
    p.add_argument("--stubs", default=os.environ.get("BITPARITY_PYTHON_STUBS", "build/python"),
                   help="folder with bitnet/v1/engine_pb2*.py")
    p.add_argument("--prompt", default="The quick brown fox")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60.0, help="deadline per call, seconds")
    p.add_argument("--tls-ca", help="PEM CA that signed the server (enables TLS)")
    p.add_argument("--tls-cert", help="client certificate (mutual TLS)")
    p.add_argument("--tls-key", help="client key (mutual TLS)")
    p.add_argument("--check", action="store_true", help="verify the replies; exit 1 on mismatch")
    args = p.parse_args()

    import grpc
    pb, rpc = load_stubs(args.stubs)
    stub = rpc.EngineStub(make_channel(grpc, args))
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print(f"CHECK FAILED: {what}", file=sys.stderr)

    try:
        info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=args.timeout)
        m = info.model
        print(f"engine  {info.engine.name} {info.engine.version} ({info.engine.build.compiler}, "
              f"{info.engine.build.simd_path})")
        print(f"model   {m.file_name} {m.architecture} layers={m.n_layer} embd={m.n_embd} "
              f"vocab={m.n_vocab} ctx={m.n_ctx_train} sha256={m.sha256[:16]}...")
        print(f"memory  rss={info.memory.resident_bytes / 2**20:.1f} MiB "
              f"peak={info.memory.peak_resident_bytes / 2**20:.1f} MiB")

        req = pb.GenerateRequest(
            input=pb.Input(text=args.prompt), max_new_tokens=args.max_new_tokens,
            sampling=pb.Sampling(temperature=args.temperature, seed=args.seed),
            ignore_eos=True, logprobs=True)
        gen = stub.Generate(req, timeout=args.timeout)
        t = gen.timings
        print(f"\nGenerate ({pb.FinishReason.Name(gen.finish_reason)}, "
              f"{gen.usage.prompt_tokens} prompt + {gen.usage.completion_tokens} new tokens, "
              f"ttft {t.time_to_first_token_ms:.1f} ms, decode {t.decode_tokens_per_s:.1f} tok/s)")
        print(f"  {args.prompt!r} -> {gen.text!r}")
        print(f"  ids {list(gen.ids)}")
        check(gen.finish_reason == pb.FINISH_REASON_LENGTH, "finish reason is LENGTH")
        check(len(gen.ids) == args.max_new_tokens, "max_new_tokens tokens generated")
        check(len(gen.tokens) == len(gen.ids) and all(tk.HasField("logprob") for tk in gen.tokens),
              "one logprob per generated token")

        # Every position, no logits: next-token log-probabilities of the prompt.
        nll = stub.EvalLogits(pb.EvalLogitsRequest(
            input=pb.Input(text=args.prompt), mode=pb.EVAL_MODE_BATCH,
            positions=pb.Positions(kind=pb.Positions.ALL),
            output=pb.LogitsOutput(kind=pb.LogitsOutput.NONE)), timeout=args.timeout)
        lps = [pos.next_token_logprob for pos in nll.positions if pos.HasField("next_token_logprob")]
        mean_nll = -sum(lps) / len(lps) if lps else float("nan")
        print(f"\nEvalLogits: {len(nll.token_ids)} tokens, NLL {mean_nll:.4f} nats/token, "
              f"perplexity {math.exp(mean_nll):.1f}")
        check(len(nll.positions) == len(nll.token_ids), "one position per token")
        check(len(lps) == len(nll.token_ids) - 1, "a next-token logprob at every position but the last")

        # The last position in full: decode the packed float32 row.
        last = stub.EvalLogits(pb.EvalLogitsRequest(
            input=pb.Input(ids=pb.TokenIds(ids=nll.token_ids)), mode=pb.EVAL_MODE_BATCH,
            positions=pb.Positions(kind=pb.Positions.LAST)), timeout=args.timeout)
        row = floats_le(last.positions[0].logits)
        top5 = sorted(range(len(row)), key=lambda i: (-row[i], i))[:5]
        print("  last position, top 5: " + ", ".join(f"{i}:{row[i]:.3f}" for i in top5))
        check(len(row) == m.n_vocab, "a FULL row holds n_vocab float32 values")
        check(top5[0] == last.positions[0].argmax_id, "argmax of the decoded row equals argmax_id")
        if args.temperature == 0:
            check(top5[0] == gen.ids[0], "the first greedy token is the argmax of the last row")
    except grpc.RpcError as e:
        print(f"RPC failed: {e.code().name}: {e.details()}", file=sys.stderr)
        return 2

    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    if args.check:
        print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
