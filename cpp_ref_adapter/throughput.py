#!/usr/bin/python3
"""Throughput of a bitnet.v1 server, for comparison with llama-bench (same model, threads).

  tg: Generate of N tokens after a 1-token (BOS) prompt, greedy, ignore_eos
      -> decode tokens/s as the server reports it, and end to end at the client
  pp: EvalLogits BATCH of P tokens, positions LAST, TOP_K 1 output
      -> prompt tokens/s at the client

Needs the Python stubs of proto/bitnet/v1/engine.proto on PYTHONPATH (protoc
--python_out/--grpc_out with grpc_python_plugin; Debian: python3-grpcio).

  throughput.py --target 127.0.0.1:50052 --gen 128 --prompt 512 --reps 5
"""
import argparse
import statistics
import time

import grpc
from bitnet.v1 import engine_pb2 as pb
from bitnet.v1 import engine_pb2_grpc as pbg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    stub = pbg.EngineStub(grpc.insecure_channel(a.target))
    info = stub.GetModelInfo(pb.GetModelInfoRequest())
    bos = info.model.bos_id
    print(f"engine {info.engine.name} model {info.model.file_name} threads {info.limits.threads}")

    gen = pb.GenerateRequest(max_new_tokens=a.gen, ignore_eos=True)
    gen.input.ids.ids.append(bos)
    stub.Generate(gen)  # warm-up
    server_tps, client_tps = [], []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        r = stub.Generate(gen)
        dt = time.perf_counter() - t0
        assert len(r.ids) == a.gen
        server_tps.append(r.timings.decode_tokens_per_s)
        client_tps.append(a.gen / dt)
    print(f"tg{a.gen}: server decode {statistics.median(server_tps):.1f} t/s, "
          f"client end-to-end {statistics.median(client_tps):.1f} t/s")

    ev = pb.EvalLogitsRequest(mode=pb.EVAL_MODE_BATCH)
    ev.input.ids.ids.extend([bos] + [(i * 7919) % info.model.n_vocab for i in range(1, a.prompt)])
    ev.positions.kind = pb.Positions.LAST
    ev.output.kind = pb.LogitsOutput.TOP_K
    ev.output.top_k = 1
    stub.EvalLogits(ev)  # warm-up
    pp = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        stub.EvalLogits(ev)
        pp.append(a.prompt / (time.perf_counter() - t0))
    print(f"pp{a.prompt}: client {statistics.median(pp):.1f} t/s")


if __name__ == "__main__":
    main()
