#!/usr/bin/python3
"""PyTorch reference of the paper's 4-bit VGG training (arXiv 2603.13931), for the golden
fixtures (scripts/make_golden.py) and for measuring the reference speed (make bench) on the
same machine. It follows the paper's recipe as the README's "The method" describes it.
Runs with Debian's python3-torch (/usr/bin/python3). Usage:
  torch_ref.py DATA_DIR [--train N] [--test N] [--epochs E] [--fp32] [--seed S] [--threads T]
  torch_ref.py --bench [--threads T] [--fp32]      # training/eval images/s on random data
DATA_DIR holds the official CIFAR-10 binary shards (data_batch_*.bin, test_batch.bin).
As a module: vgg(quantized, classes), q4(weight), qaware_step(model, optimizer), augment, norm."""
import argparse, os, time, numpy as np, torch, torch.nn as nn, torch.nn.functional as F

def load(d, names):
    raw = np.concatenate([np.fromfile(os.path.join(d, n), np.uint8).reshape(-1, 3073) for n in names])
    return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()), torch.from_numpy(raw[:, 0].astype(np.int64))

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2023, 0.1994, 0.2010]).view(1, 3, 1, 1)

def q4(w):  # symmetric 4-bit, per-tensor dynamic scale, straight-through estimator
    s = (w.abs().max() + 1e-8) / 7
    return w + ((torch.round(w / s).clamp(-7, 7) * s) - w).detach()

class QConv(nn.Conv2d):
    def __init__(s, i, o, q): super().__init__(i, o, 3, padding=1); s.q = q
    def forward(s, x): return F.conv2d(x, q4(s.weight) if s.q else s.weight, s.bias, 1, 1)
class QLin(nn.Linear):
    def __init__(s, i, o, q): super().__init__(i, o); s.q = q
    def forward(s, x): return F.linear(x, q4(s.weight) if s.q else s.weight, s.bias)

def vgg(q, k=10):
    def blk(i, o): return [QConv(i, o, q), nn.BatchNorm2d(o), nn.ReLU(), QConv(o, o, q), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]
    m = nn.Sequential(*blk(3, 64), *blk(64, 128), *blk(128, 256), nn.Flatten(), QLin(4096, 512, q), nn.BatchNorm1d(512), nn.ReLU(), nn.Dropout(0.5), QLin(512, k, q))
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d): nn.init.normal_(mod.weight, 0, (2 / (mod.in_channels * 9)) ** 0.5); nn.init.zeros_(mod.bias)
        if isinstance(mod, nn.Linear): nn.init.normal_(mod.weight, 0, (1 / mod.in_features) ** 0.5); nn.init.zeros_(mod.bias)
    return m

def qaware_step(m, opt, quantized=True):
    """The paper's optimizer step, after loss.backward(): clip 0.5, AdamW, tanh soft clip."""
    torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5); opt.step()
    if quantized:
        with torch.no_grad():
            for p in m.parameters():
                if p.ndim >= 2: p.copy_(3.0 * torch.tanh(p / 3.0))

def bench(o):
    m = vgg(not o.fp32); opt = torch.optim.AdamW(m.parameters(), 1e-3, weight_decay=5e-4)
    x = torch.randn(128, 3, 32, 32); y = torch.randint(0, 10, (128,))
    def step():
        opt.zero_grad(); F.cross_entropy(m(x), y).backward(); qaware_step(m, opt, not o.fp32)
    for _ in range(2): step()
    t = time.time(); n = 8
    for _ in range(n): step()
    tr = 128 * n / (time.time() - t); m.eval()
    with torch.no_grad():
        m(x); t = time.time()
        for _ in range(n): m(x)
        ev = 128 * n / (time.time() - t)
    print(f'torch {torch.__version__} threads {torch.get_num_threads()} train_img_per_s {tr:.1f} eval_img_per_s {ev:.1f}', flush=True)

def augment(x, g):  # x uint8 N,3,32,32: zero-pad 4 + random 32x32 crop, horizontal flip p=0.5
    n = x.shape[0]; p = F.pad(x, (4, 4, 4, 4)); out = torch.empty_like(x)
    ox = torch.randint(0, 9, (n,), generator=g); oy = torch.randint(0, 9, (n,), generator=g); fl = torch.rand(n, generator=g) < 0.5
    for i in range(n):
        c = p[i, :, oy[i]:oy[i] + 32, ox[i]:ox[i] + 32]
        out[i] = c.flip(2) if fl[i] else c
    return out

def norm(x): return (x.float() / 255 - MEAN) / STD

def main():
    a = argparse.ArgumentParser(); a.add_argument('data', nargs='?'); a.add_argument('--bench', action='store_true'); a.add_argument('--train', type=int, default=50000); a.add_argument('--test', type=int, default=10000)
    a.add_argument('--epochs', type=int, default=1); a.add_argument('--fp32', action='store_true'); a.add_argument('--seed', type=int, default=0); a.add_argument('--threads', type=int, default=2)
    a.add_argument('--tmax', type=int, default=100)
    o = a.parse_args(); torch.set_num_threads(o.threads); torch.manual_seed(o.seed); g = torch.Generator().manual_seed(o.seed)
    if o.bench: return bench(o)
    if not o.data: a.error('DATA_DIR is required unless --bench')
    xtr, ytr = load(o.data, [f'data_batch_{i}.bin' for i in range(1, 6)]); xte, yte = load(o.data, ['test_batch.bin'])
    xtr, ytr, xte, yte = xtr[:o.train], ytr[:o.train], xte[:o.test], yte[:o.test]
    m = vgg(not o.fp32); opt = torch.optim.AdamW(m.parameters(), 1e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=o.tmax)
    for ep in range(o.epochs):
        m.train(); perm = torch.randperm(len(xtr), generator=g); t0 = time.time(); tl = 0; tc = 0
        for b in range(0, len(xtr), 128):
            idx = perm[b:b + 128]; x = norm(augment(xtr[idx], g)); y = ytr[idx]
            opt.zero_grad(); out = m(x); loss = F.cross_entropy(out, y); loss.backward()
            qaware_step(m, opt, not o.fp32)
            tl += loss.item() * len(idx); tc += (out.argmax(1) == y).sum().item()
        dt = time.time() - t0; sched.step(); m.eval(); corr = 0
        with torch.no_grad():
            for b in range(0, len(xte), 100): corr += (m(norm(xte[b:b + 100])).argmax(1) == yte[b:b + 100]).sum().item()
        print(f'epoch {ep + 1} loss {tl / len(xtr):.4f} train_acc {100 * tc / len(xtr):.2f} test_acc {100 * corr / len(xte):.2f} train_img_per_s {len(xtr) / dt:.1f}', flush=True)

if __name__ == '__main__': main()
