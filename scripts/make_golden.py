#!/usr/bin/python3
"""make_golden.py - golden values from the PyTorch reference (scripts/torch_ref.py)
for tests/test_golden.c. Weights, BN state, inputs, labels and dropout masks come from an
integer hash that tests/golden_values.h reproduces bit for bit in C, so the fixture holds
only PyTorch's outputs: logits, losses, gradients and the weights after two full optimizer
steps (clip 0.5, AdamW, tanh soft clip), for the 4-bit model and for the FP32 switch.
Large tensors are stored as a fixed subsample plus their full L2 norm.
Usage: /usr/bin/python3 scripts/make_golden.py [OUT_DIR]   (Debian python3-torch)"""
import math, os, struct, sys
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, '..', 'tests', 'fixtures')
sys.path.insert(0, HERE)
import torch, torch.nn as nn, torch.nn.functional as F  # noqa: E402
import torch_ref  # noqa: E402

BATCH, CLASSES, SAMPLE = 16, 10, 4096
MAGIC = b'Q4GOLD01'


def hash_u32(stream, index):
    """tests/golden_values.h: golden_hash(stream, index), in uint32 arithmetic."""
    i = np.asarray(index, dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64(stream) * np.uint64(97531) + np.uint64(12345)) & np.uint64(0xffffffff)
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(2246822519)) & np.uint64(0xffffffff)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(3266489917)) & np.uint64(0xffffffff)
    h ^= h >> np.uint64(16)
    return h


def unit(stream, count):
    """Uniform with unit variance, in double: ((h >> 8) / 2^24 - 0.5) * 2 * sqrt(3)."""
    h = hash_u32(stream, np.arange(count, dtype=np.uint64))
    return ((h >> np.uint64(8)).astype(np.float64) / 16777216.0 - 0.5) * (2.0 * math.sqrt(3.0))


def tensor_values(t, p):
    """Parameter tensor number t (PyTorch parameters() order) of shape p.shape."""
    u = unit(t, p.numel())
    if p.ndim >= 2:
        fan_in = p.numel() // p.shape[0]
        std = math.sqrt(2.0 / fan_in) if p.ndim == 4 else math.sqrt(1.0 / fan_in)
        v = std * u
    elif t % 4 == 2 and t != 29:  # BN weight (tensors 2, 6, ..., 26)
        v = 1.0 + 0.2 * u
    elif t % 4 == 3 and t != 29:  # BN bias
        v = 0.1 * u
    else:  # conv and linear biases
        v = 0.05 * u
    return torch.from_numpy(v.astype(np.float32).reshape(p.shape))


class FixedDropout(nn.Module):
    """Dropout with a given mask of 0 / 2 values (the C test applies the same one)."""
    def __init__(self):
        super().__init__()
        self.mask = None

    def forward(self, x):
        return x * self.mask


def mask_for(stream):
    bits = hash_u32(stream, np.arange(BATCH * 512, dtype=np.uint64)) & np.uint64(1)
    return torch.from_numpy((bits.astype(np.float32) * 2.0).reshape(BATCH, 512))


def inputs_for(step):
    x = torch.from_numpy(unit(100 + step, BATCH * 3 * 32 * 32).astype(np.float32).reshape(BATCH, 3, 32, 32))
    y = torch.tensor([(i * (7 if step == 0 else 3) + (3 if step == 0 else 1)) % CLASSES for i in range(BATCH)])
    return x, y


def sample_indices(count):
    if count <= SAMPLE:
        return np.arange(count)
    stride = count // SAMPLE
    return np.arange(SAMPLE) * stride


def write_tensor_set(out, tensors):
    for t in tensors:
        flat = t.detach().reshape(-1).double().numpy()
        idx = sample_indices(flat.size)
        out.write(struct.pack('<IId', flat.size, idx.size, float(np.sqrt(np.sum(flat * flat)))))
        out.write(flat[idx].astype(np.float32).tobytes())


def generate(quantized):
    torch.manual_seed(0)
    model = torch_ref.vgg(quantized, CLASSES)
    dropout = FixedDropout()
    model[-2] = dropout
    params = list(model.parameters())
    assert len(params) == 30
    with torch.no_grad():
        for t, p in enumerate(params):
            p.copy_(tensor_values(t, p))
        bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
        offset = 0
        for bn in bns:
            c = bn.num_features
            bn.running_mean.copy_(torch.from_numpy((0.1 * unit(300, 2048)[offset:offset + c]).astype(np.float32)))
            bn.running_var.copy_(torch.from_numpy((1.0 + 0.25 * unit(301, 2048)[offset:offset + c]).astype(np.float32)))
            offset += c
    opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=5e-4)
    model.train()
    name = 'golden_q4.bin' if quantized else 'golden_fp32.bin'
    with open(os.path.join(OUT, name), 'wb') as out:
        out.write(MAGIC + struct.pack('<III', BATCH, CLASSES, 1 if quantized else 0))
        for step in range(2):
            x, y = inputs_for(step)
            dropout.mask = mask_for(200 + step)
            opt.zero_grad()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            out.write(logits.detach().numpy().astype(np.float32).tobytes())
            out.write(struct.pack('<d', loss.item()))
            write_tensor_set(out, [p.grad for p in params])
            torch_ref.qaware_step(model, opt, quantized)
            write_tensor_set(out, params)
            stats = []
            for bn in bns:
                stats += [bn.running_mean, bn.running_var]
            write_tensor_set(out, stats)
            print(f'{name}: step {step + 1} loss {loss.item():.6f}')


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    generate(True)
    generate(False)
