#!/usr/bin/python3
"""A MiniLM-size BERT (6 layers, hidden 384, 12 heads, vocab 30522) with random weights, written
as an HF directory, and its forward pass timed in plain torch (one thread, as berth's runner
uses for num_cpus=1). Prints the timings as JSON.

    /usr/bin/python3 bench/encoder_torch.py OUT_DIR ITERATIONS
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures'))
from make_encoders import make  # noqa: E402

out, iterations = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
results = {}
with torch.no_grad():
    forward = make(out, 'bert', '', layers=6, hidden=384, heads=12, inter=1536, vocab=30522,
                   positions=512, seed=11, name='minilm')
    for batch, length in [(1, 16), (1, 64), (8, 64)]:
        ids = torch.randint(5, 30000, (batch, length), generator=g)
        mask, types = torch.ones_like(ids), torch.zeros_like(ids)
        for _ in range(5):
            forward(ids, mask, types)
        times = []
        for _ in range(iterations):
            started = time.perf_counter()
            forward(ids, mask, types)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        results[f'{batch}x{length}'] = {'p50': times[len(times) // 2], 'p99': times[min(len(times) - 1, int(len(times) * 0.99))],
                                         'ids': ids.tolist()}
print(json.dumps({'torch': torch.__version__, 'results': results}))
