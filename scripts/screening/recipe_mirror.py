#!/usr/bin/env python3
"""recipe_mirror.py - a PyTorch mirror of q4's `fast` and `fast15` recipes (the project's core/session/config.c),
for screening recipe changes on a GPU before confirming them in q4: test accuracy per epoch at a planned epoch budget, 4-bit
or FP32 weights, and at the end the test-time-augmented (6-view) accuracy and seconds per epoch.

What it mirrors, each checked against the C engine (core/):
  model      the paper's VGG of ../shared/reference/torch_ref.py (6 conv3x3+bias, BN, ReLU, 3 max-pools, fc1 4096->512
             +bias, BN1d, ReLU, fc2 512->10) without dropout (fast: dropout=0); init N(0,2/(in*9)) convs,
             N(0,1/in) linears, biases 0, BN 1/0; BN eps 1e-5, momentum 0.1, unbiased running var
  quantizer  (--bits 4) all 8 weight layers, every forward: s=(max|W|+1e-8)/7, round-half-even(W/s)
             clamped to -7..7, times s; gradient straight through (identity) to the float weights
  optimizer  SGD, Nesterov momentum 0.9, weight decay 5e-4 added to the gradient of EVERY parameter
             (optim/optim.c, kernels/ref: d=g+wd*w; b=m*b+d; d=d+m*b; w-=lr*d: torch.optim.SGD's rule)
  schedule   per step t (0-based) of total=epochs*steps_per_epoch, warm=llround(0.2*total):
             lr=0.07*(t+1)/warm for t<warm, else 0.07*(total-t)/(total-warm) (q4_learning_rate)
  after step 4-bit only: W <- 3*tanh(W/3) on the 8 weight tensors (FP32 = weight_bits 32: no quantizer
             and no tanh clip, as optim.c's soft_clip = weight_bits < 32)
  loss       cross-entropy with label smoothing 0.2 (target (1-s)*onehot + s/K); no gradient clipping
  data       (v/255-mean)/std with q4's mean/std; batch 64; each epoch a fresh permutation; the last
             partial batch is used if it holds >= 2 images (q4_steps_per_epoch); per image a random
             flip (p 0.5) and a 32x32 window of the image zero-padded by 2 (shifts -2..2 each way)
  test       plain accuracy after every epoch (BN running statistics); after the last epoch also the
             6-view TTA: logits averaged, plain and flipped 1/4 each, windows shifted by (-1,-1) and
             (+1,+1) on a 1-pixel zero padding, flipped and not, 1/8 each (session/evaluate.c)
Not mirrored (cannot be cheaply): q4's counter-based random streams (init, order, crops, flips draw
from the same distributions but different samples), float summation orders (cuDNN vs q4's GEMM /
Winograd), BN batch statistics and the loss accumulated in double in q4.

Data: the CIFAR-10 binary shards (data_batch_1..5.bin, test_batch.bin; records of 1 label byte +
3072 bytes CHW) are loaded once into device tensors; augmentation runs on the device (one gather
per batch from the padded uint8 tensor), its randomness drawn per epoch from a seeded CPU generator
(so CPU and GPU runs draw the same order, crops and flips). Training is FP32 (TF32 off).

Screening additions (this copy, extended from ../shared/screening for issue 21):
  --recipe fast15  the fast recipe with alternating flips (batch.c: each image's own random first flip,
                   then mirrored in every other epoch)
  --set k=v,...    any RECIPE setting changed (learning_rate, weight_decay, warmup, crop, tanh_bound,
                   momentum, label_smoothing, batch_size, cutout, decay_all, bn_momentum, shift_lr, freeze_bn_scale,
                   scale_rms:
                   q4's --scale-rms, each tensor's quantizer range capped at that many RMS), and
                   lookahead=K (q4's --lookahead, airbench's: every K steps the slow copy of every float
                   parameter and BN statistic moves toward the fast one by 1-d, d = 0.95^5 (t/T)^3, and
                   the fast copy is set to it; after the last step the fast copy takes the slow one)
  --tf32           TF32 convolutions and matmuls (faster on a GPU; screening only)

Usage:
  recipe_mirror.py --data DIR --epochs E --bits 4|32 --seed S --log FILE.jsonl [--recipe fast15] [--set k=v,...]
                      [--train-limit N] [--test-limit N] [--device auto|cpu|cuda] [--threads T]
  recipe_mirror.py --synthetic N --epochs E ...   random images/labels (N train, 1000 test): timing
  recipe_mirror.py --summarize LOG.jsonl ...      one line per run: per-epoch, final, TTA, s/epoch
  recipe_mirror.py --plan LOG.jsonl ... --runs "a:4:3:0 ..." --drop "f,j" --budget 450
                                                     the runs predicted to fit, from --synthetic timings
recipe_mirror.sh runs a list of them in parallel.
Runs with torch 1.13 (Debian's /usr/bin/python3, CPU) and torch 2.11 (CUDA)."""
import argparse, json, math, os, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

MEAN = (0.4914, 0.4822, 0.4465)  # core/data/batch.c q4_norm_mean / q4_norm_std
STD = (0.2023, 0.1994, 0.2010)
RECIPE = dict(batch_size=64, learning_rate=0.07, momentum=0.9, nesterov=True, weight_decay=5e-4, warmup=0.2,
              label_smoothing=0.2, dropout=0.0, clip_norm=0.0, crop=2, tanh_bound=3.0, tta='flip-translate',
              flip='random', cutout=0, decay_all=1, bn_momentum=0.1, lookahead=0, scale_rms=0.0, shift_lr=1.0,
              freeze_bn_scale=0)
RECIPES = {'fast': {}, 'fast15': {'flip': 'alternate'}}
TTA_VIEWS = [(0, 0, False, 0.25), (0, 0, True, 0.25), (-1, -1, False, 0.125), (-1, -1, True, 0.125),
             (1, 1, False, 0.125), (1, 1, True, 0.125)]  # (dx, dy, flip, weight), evaluate.c's order


def load(d, names):
    raw = np.concatenate([np.fromfile(os.path.join(d, n), np.uint8).reshape(-1, 3073) for n in names])
    return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()), torch.from_numpy(raw[:, 0].astype(np.int64))


class Quant(torch.autograd.Function):
    """Per-tensor symmetric quantizer, levels -L..L, scale (range+1e-8)/L with range max|W|, capped at
    scale_rms x RMS(W) when scale_rms > 0 (q4's --scale-rms); straight-through gradient."""
    @staticmethod
    def forward(ctx, w, max_level, scale_rms=0.0):
        r = w.abs().max()
        if scale_rms > 0:
            r = torch.minimum(r, scale_rms * w.double().pow(2).mean().sqrt().float())
        s = (r + 1e-8) / max_level
        return torch.round(w / s).clamp(-max_level, max_level) * s

    @staticmethod
    def backward(ctx, g):
        return g, None, None


class QConv(nn.Conv2d):
    def __init__(self, i, o, max_level, scale_rms=0.0):
        super().__init__(i, o, 3, padding=1)
        self.max_level, self.scale_rms = max_level, scale_rms

    def forward(self, x):
        w = Quant.apply(self.weight, self.max_level, self.scale_rms) if self.max_level else self.weight
        return F.conv2d(x, w, self.bias, 1, 1)


class QLin(nn.Linear):
    def __init__(self, i, o, max_level, scale_rms=0.0):
        super().__init__(i, o)
        self.max_level, self.scale_rms = max_level, scale_rms

    def forward(self, x):
        w = Quant.apply(self.weight, self.max_level, self.scale_rms) if self.max_level else self.weight
        return F.linear(x, w, self.bias)


def vgg(max_level, k=10, bn_momentum=0.1, scale_rms=0.0):
    """../shared/reference/torch_ref.py's vgg() with the fast recipe's dropout 0 (no Dropout layer); max_level 0: FP32."""
    bm = bn_momentum
    def blk(i, o):
        return [QConv(i, o, max_level, scale_rms), nn.BatchNorm2d(o, momentum=bm), nn.ReLU(), QConv(o, o, max_level, scale_rms),
                nn.BatchNorm2d(o, momentum=bm), nn.ReLU(), nn.MaxPool2d(2)]
    m = nn.Sequential(*blk(3, 64), *blk(64, 128), *blk(128, 256), nn.Flatten(), QLin(4096, 512, max_level, scale_rms),
                      nn.BatchNorm1d(512, momentum=bm), nn.ReLU(), QLin(512, k, max_level, scale_rms))
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.normal_(mod.weight, 0, (2 / (mod.in_channels * 9)) ** 0.5); nn.init.zeros_(mod.bias)
        if isinstance(mod, nn.Linear):
            nn.init.normal_(mod.weight, 0, (1 / mod.in_features) ** 0.5); nn.init.zeros_(mod.bias)
    return m


def recipe_of(o):
    """RECIPE with the base recipe's and then --set's changes, each value parsed as the default's type."""
    r = dict(RECIPE, **RECIPES[o.recipe])
    for kv in filter(None, o.set.split(',')):
        k, v = kv.split('=', 1)
        if k not in r:
            raise SystemExit('recipe_mirror.py: there is no setting %r' % k)
        r[k] = type(r[k])(v) if not isinstance(r[k], bool) else bool(int(v))
    return r


def steps_per_epoch(count, batch):  # core/session/session.c q4_steps_per_epoch
    return count // batch + (1 if count % batch >= 2 else 0)


def learning_rate(t, total, peak, warmup):  # core/optim/optim.c q4_learning_rate, onecycle
    warm = int(math.floor(warmup * total + 0.5))  # llround of a positive value
    if t < warm:
        return peak * (t + 1) / warm
    if t >= total:
        return 0.0
    return peak * (total - t) / (total - warm)


def set_fp32_strict(tf32=False):
    """TF32 off (on with --tf32) through the legacy flags only (torch 2.9+ raises on reads after mixing in the new API)."""
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        return {'cudnn_allow_tf32': bool(torch.backends.cudnn.allow_tf32),
                'matmul_allow_tf32': bool(torch.backends.cuda.matmul.allow_tf32)}
    except Exception as e:  # never fatal: the flags above were set
        return {'tf32_flags_read_error': str(e)[:200]}


class Runner:
    def __init__(self, o, dev):
        self.o, self.dev = o, dev
        self.mean = torch.tensor(MEAN, device=dev).view(1, 3, 1, 1)
        self.std = torch.tensor(STD, device=dev).view(1, 3, 1, 1)
        self.ar = torch.arange(32, device=dev)
        self.ch = torch.arange(3, device=dev).view(1, 3, 1, 1)

    def norm(self, x_u8):  # (v/255 - mean)/std in float32, as batch.c's table
        return (x_u8.float() / 255 - self.mean) / self.std

    def crops(self, padded, idx, ox, oy, flip):
        """Images idx of `padded` (uint8, N,3,32+2p,32+2p): the 32x32 window at offsets (ox, oy), mirrored
        where flip (the flip mirrors the cropped window, as batch.c's place_image). One gather."""
        rows = oy.view(-1, 1) + self.ar.view(1, -1)
        cols = torch.where(flip.view(-1, 1), ox.view(-1, 1) + 31 - self.ar.view(1, -1), ox.view(-1, 1) + self.ar.view(1, -1))
        return padded[idx.view(-1, 1, 1, 1), self.ch, rows.view(-1, 1, 32, 1), cols.view(-1, 1, 1, 32)]

    def evaluate(self, m, xte_pad1, yte, views, batch):
        """Accuracy and mean loss (no smoothing) of the weighted-average logits over views; xte_pad1 is the
        test set zero-padded by 1 pixel."""
        m.eval()
        n = yte.shape[0]
        correct = torch.zeros((), dtype=torch.int64, device=self.dev)
        loss = torch.zeros((), dtype=torch.float64, device=self.dev)
        with torch.no_grad():
            for b in range(0, n, batch):
                idx = torch.arange(b, min(b + batch, n), device=self.dev)
                acc = None
                for dx, dy, flip, w in views:
                    ox = torch.full_like(idx, 1 + dx); oy = torch.full_like(idx, 1 + dy)
                    fl = torch.full(idx.shape, flip, dtype=torch.bool, device=self.dev)
                    logits = m(self.norm(self.crops(xte_pad1, idx, ox, oy, fl)))
                    acc = logits * w if acc is None else acc + w * logits
                y = yte[idx]
                correct += (acc.argmax(1) == y).sum()
                loss += F.cross_entropy(acc, y, reduction='sum').double()
        return correct.item() / n, loss.item() / n


def train(o):
    dev = torch.device(('cuda' if torch.cuda.is_available() else 'cpu') if o.device == 'auto' else o.device)
    torch.set_num_threads(o.threads if o.threads > 0 else (1 if dev.type == 'cuda' else 2))
    flags = set_fp32_strict(o.tf32)
    if dev.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    t_start = time.time()
    if o.synthetic:
        gd = torch.Generator().manual_seed(12345)
        xtr = torch.randint(0, 256, (o.synthetic, 3, 32, 32), generator=gd, dtype=torch.uint8)
        ytr = torch.randint(0, 10, (o.synthetic,), generator=gd)
        xte = torch.randint(0, 256, (1000, 3, 32, 32), generator=gd, dtype=torch.uint8)
        yte = torch.randint(0, 10, (1000,), generator=gd)
    else:
        xtr, ytr = load(o.data, ['data_batch_%d.bin' % i for i in range(1, 6)])
        xte, yte = load(o.data, ['test_batch.bin'])
    if o.train_limit: xtr, ytr = xtr[:o.train_limit], ytr[:o.train_limit]
    if o.test_limit: xte, yte = xte[:o.test_limit], yte[:o.test_limit]
    r = recipe_of(o)
    pad = r['crop']
    xtr_pad = F.pad(xtr, (pad, pad, pad, pad)).to(dev)
    ytr = ytr.to(dev)
    xte_pad1 = F.pad(xte, (1, 1, 1, 1)).to(dev)
    yte = yte.to(dev)
    n = xtr.shape[0]
    bs = r['batch_size']
    spe = steps_per_epoch(n, bs)
    total = o.epochs * spe

    torch.manual_seed(o.seed)
    max_level = (1 << (o.bits - 1)) - 1 if o.bits < 32 else 0
    m = vgg(max_level, bn_momentum=r['bn_momentum'], scale_rms=float(r['scale_rms'])).to(dev)
    weights = [mod.weight for mod in m.modules() if isinstance(mod, (nn.Conv2d, nn.Linear))]
    assert len(weights) == 8
    # q4's three groups (optim.c): conv and linear weights; other biases and BN scales (no decay with
    # decay_all 0); BN shifts, at shift_lr times the learning rate with the same decay per step
    ids = {id(w) for w in weights}
    bns = [mod for mod in m.modules() if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d))]
    shifts = [mod.bias for mod in bns]
    shift_ids = {id(p) for p in shifts}
    if r['freeze_bn_scale']:  # the scales stay at 1: no gradient, so no step, no decay, not in a clip norm
        for mod in bns:
            mod.weight.requires_grad_(False)
        ids |= {id(mod.weight) for mod in bns}
    other_decay = r['weight_decay'] if r['decay_all'] else 0.0
    sl = float(r['shift_lr'])
    groups = [{'params': weights, 'weight_decay': r['weight_decay'], 'lr_scale': 1.0},
              {'params': [p for p in m.parameters() if id(p) not in ids and id(p) not in shift_ids],
               'weight_decay': other_decay, 'lr_scale': 1.0},
              {'params': shifts, 'weight_decay': other_decay / sl, 'lr_scale': sl}]
    opt = torch.optim.SGD(groups, lr=r['learning_rate'], momentum=r['momentum'], nesterov=bool(r['nesterov']))
    slow = None
    if r['lookahead']:
        slow = {k: v.detach().clone() for k, v in m.state_dict().items() if v.dtype.is_floating_point}
    g = torch.Generator().manual_seed(o.seed)
    runner = Runner(o, dev)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'
    header = {'run': {'tool': 'recipe_mirror.py', 'recipe': '%s (PyTorch mirror)' % o.recipe, 'bits': o.bits,
                      'set': o.set, 'tf32': o.tf32,
                      'epochs': o.epochs, 'seed': o.seed, 'train_count': n, 'test_count': int(yte.shape[0]),
                      'steps_per_epoch': spe, 'synthetic': o.synthetic, 'settings': r, 'torch': torch.__version__,
                      'device': name, 'threads': torch.get_num_threads(), 'load_seconds': time.time() - t_start,
                      **flags}}
    log = open(o.log, 'w') if o.log else None

    def emit(rec):
        line = json.dumps(rec)
        print(line, flush=True)
        if log:
            log.write(line + '\n'); log.flush()
    emit(header)

    def sync():
        if dev.type == 'cuda': torch.cuda.synchronize(dev)

    if o.barrier:  # DIR:N - parallel timing runs start training together (after setup), or after 90 s
        bdir, count = o.barrier.rsplit(':', 1)
        os.makedirs(bdir, exist_ok=True)
        open(os.path.join(bdir, str(os.getpid())), 'w').close()
        t_wait = time.time()
        while len(os.listdir(bdir)) < int(count) and time.time() - t_wait < 90:
            time.sleep(0.05)

    step, elapsed, train_secs, status = 0, 0.0, [], 'ok'
    plain = [(0, 0, False, 1.0)]
    first_flip = torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(o.seed + 7919)) == 1
    cut = r['cutout']

    def lookahead(decay):
        sd = m.state_dict()
        with torch.no_grad():
            for k, v in slow.items():
                v.lerp_(sd[k], 1 - decay)
                sd[k].copy_(v)
    for ep in range(o.epochs):
        m.train()
        perm = torch.randperm(n, generator=g)
        ox = torch.randint(0, 2 * pad + 1, (n,), generator=g)
        oy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
        fl = torch.randint(0, 2, (n,), generator=g) == 1
        if r['flip'] == 'alternate':  # by image (batch.c: its own first flip, then every other epoch)
            fl = first_flip[perm] ^ bool(ep & 1)
        if cut:
            cx = torch.randint(0, 32, (n,), generator=g).to(dev)
            cy = torch.randint(0, 32, (n,), generator=g).to(dev)
        perm, ox, oy, fl = perm.to(dev), ox.to(dev), oy.to(dev), fl.to(dev)
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        sync(); t0 = time.time()
        lr = 0.0
        for s in range(spe):
            a, b = s * bs, min(s * bs + bs, n)
            idx = perm[a:b]
            x = runner.norm(runner.crops(xtr_pad, idx, ox[a:b], oy[a:b], fl[a:b]))
            if cut:  # a square centred anywhere (clipped at the edges) set to 0, the mean (batch.c)
                ar = runner.ar.view(1, 32)
                iny = ((ar >= (cy[a:b] - cut // 2).view(-1, 1)) & (ar < (cy[a:b] - cut // 2 + cut).view(-1, 1)))
                inx = ((ar >= (cx[a:b] - cut // 2).view(-1, 1)) & (ar < (cx[a:b] - cut // 2 + cut).view(-1, 1)))
                x = x.masked_fill((iny.view(-1, 1, 32, 1) & inx.view(-1, 1, 1, 32)), 0.0)
            y = ytr[idx]
            out = m(x)
            loss = F.cross_entropy(out, y, label_smoothing=r['label_smoothing'])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            lr = learning_rate(step, total, r['learning_rate'], r['warmup'])
            for group in opt.param_groups:
                group['lr'] = lr * group['lr_scale']
            opt.step()
            if max_level:
                with torch.no_grad():
                    for w in weights:
                        w.copy_(r['tanh_bound'] * torch.tanh(w / r['tanh_bound']))
            step += 1
            if slow is not None and step % r['lookahead'] == 0:
                lookahead(0.95 ** 5 * (step / total) ** 3)
            if slow is not None and step == total:
                lookahead(1.0)  # the run ends on the slow weights
            with torch.no_grad():
                loss_sum += loss.detach().double() * (b - a)
                correct += (out.argmax(1) == y).sum()
        sync(); dt = time.time() - t0
        train_secs.append(dt)
        t1 = time.time()
        acc, test_loss = runner.evaluate(m, xte_pad1, yte, plain, o.eval_batch)
        tta = None
        if ep + 1 == o.epochs and r['tta'] == 'flip-translate':
            tta, _ = runner.evaluate(m, xte_pad1, yte, TTA_VIEWS, o.eval_batch)
        sync(); de = time.time() - t1
        elapsed += dt + de
        train_loss = loss_sum.item() / n
        emit({'epoch': ep + 1, 'epochs': o.epochs, 'step': step, 'loss': train_loss, 'train_accuracy': correct.item() / n,
              'test_accuracy': acc, 'test_loss': test_loss, 'tta_accuracy': tta, 'learning_rate': lr,
              'train_seconds': dt, 'eval_seconds': de, 'elapsed_seconds': elapsed, 'images_per_second': n / dt})
        if not math.isfinite(train_loss):
            status = 'non-finite loss'
            break
    done = len(train_secs)
    later = train_secs[1:] if done > 1 else train_secs
    emit({'summary': {'bits': o.bits, 'epochs': o.epochs, 'epochs_done': done, 'seed': o.seed, 'status': status,
                      'final_test_accuracy': acc if done else None, 'tta_accuracy': tta if done == o.epochs else None,
                      'seconds_per_epoch': sum(train_secs) / max(done, 1),
                      'seconds_per_epoch_after_first': sum(later) / max(len(later), 1),
                      'wall_seconds': time.time() - t_start}})
    if log: log.close()
    return 0 if status == 'ok' else 2


def summarize(paths):
    for p in paths:
        head, eps, summ = None, [], None
        try:
            for line in open(p):
                line = line.strip()
                if not line: continue
                rec = json.loads(line)
                if 'run' in rec: head = rec['run']
                elif 'summary' in rec: summ = rec['summary']
                elif 'epoch' in rec: eps.append(rec)
        except Exception as e:
            print('%s: unreadable (%s)' % (os.path.basename(p), e)); continue
        accs = ' '.join('%.2f' % (100 * e['test_accuracy']) for e in eps)
        planned = head['epochs'] if head else '?'
        bits = head['bits'] if head else '?'
        seed = head['seed'] if head else '?'
        tta = eps[-1]['tta_accuracy'] if eps and eps[-1].get('tta_accuracy') is not None else None
        sec = [e['train_seconds'] for e in eps]
        spe = sum(sec) / len(sec) if sec else float('nan')
        print('RUN %-10s bits %-2s seed %s epochs %s/%s final %s tta %s s/epoch %.2f (last %.2f, eval %.2f/ep) | %s%s' % (
            os.path.basename(p).rsplit('.', 1)[0], bits, seed, len(eps), planned,
            '%.2f' % (100 * eps[-1]['test_accuracy']) if eps else '-', '%.2f' % (100 * tta) if tta is not None else '-',
            spe, sec[-1] if sec else float('nan'), sum(e['eval_seconds'] for e in eps) / max(len(eps), 1), accs,
            '' if summ else ' [no summary: killed or failed]'), flush=True)


def plan(o):
    """From timing logs (--synthetic runs: names starting 'solo' ran alone, the others together), predict
    the wall time of the runs in --runs ("name:bits:epochs:seed ..."), all started together on one GPU,
    and print the runs to keep: the whole list if it fits in --budget seconds, else without the groups of
    --drop ("f,j e,i": first f and j, then also e and i), in order. Processor sharing: each run at most
    its solo speed, all together at most the measured aggregate speed."""
    solo, par = [], []
    for p in o.plan:
        eps = [json.loads(l) for l in open(p) if l.strip().startswith('{"epoch"')]
        if not eps: continue
        head = json.loads(open(p).readline())['run']
        per_step = eps[-1]['train_seconds'] / head['steps_per_epoch']
        (solo if os.path.basename(p).startswith('solo') else par).append(per_step)
    if not solo or not par:
        print(o.runs); print('plan: no timing logs; keeping every run', file=sys.stderr); return 0
    t_solo = sum(solo) / len(solo)
    rate = sum(1.0 / t for t in par)  # steps per second, all parallel runs together
    spe, eval_steps, tta_steps, startup = 782, 52, 312, 30.0  # 10,000 test images ~ 52 training steps

    def predict(runs):
        left = [int(r.split(':')[2]) * (spe + eval_steps) + tta_steps for r in runs]
        t = 0.0
        while any(w > 0 for w in left):
            active = [i for i, w in enumerate(left) if w > 0]
            each = min(1.0 / t_solo, rate / len(active))
            dt = min(left[i] for i in active) / each
            for i in active: left[i] -= each * dt
            left = [w if w > 1e-6 else 0 for w in left]
            t += dt
        return t + startup
    runs = o.runs.split()
    drops = [set(g.split(',')) for g in (o.drop or '').split()]
    kept, pred = runs, predict(runs)
    for g in drops:
        if pred <= o.budget: break
        kept = [r for r in kept if r.split(':')[0] not in g]
        pred = predict(kept)
    print(' '.join(kept))
    print('plan: solo %.2f ms/step, %d together %.0f steps/s in all (%.2f ms/step each); predicted %.0f s for %s '
          '(every run: %.0f s; budget %.0f s)' % (1000 * t_solo, len(par), rate, 1000 * len(par) / rate, pred,
                                                 ','.join(r.split(':')[0] for r in kept), predict(runs), o.budget),
          file=sys.stderr)
    return 0


def main():
    a = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    a.add_argument('--data', help='folder of the CIFAR-10 binary shards')
    a.add_argument('--epochs', type=int, default=1, help='planned epochs (the one-cycle schedule ends there)')
    a.add_argument('--bits', type=int, default=4, choices=[2, 3, 4, 5, 6, 7, 8, 32], help='weight bits; 32: FP32')
    a.add_argument('--seed', type=int, default=0)
    a.add_argument('--log', help='JSON lines: a header, one record per epoch, a summary')
    a.add_argument('--train-limit', type=int, default=0, help='first N training images (0: all)')
    a.add_argument('--test-limit', type=int, default=0, help='first N test images (0: all)')
    a.add_argument('--device', default='auto', help='auto (cuda if available), cpu, cuda, cuda:N')
    a.add_argument('--threads', type=int, default=0, help='CPU threads (0: 1 with CUDA, 2 on CPU)')
    a.add_argument('--eval-batch', type=int, default=1000)
    a.add_argument('--recipe', default='fast', choices=sorted(RECIPES), help='the base recipe')
    a.add_argument('--set', default='', help='k=v,... settings changed from the recipe')
    a.add_argument('--tf32', action='store_true', help='TF32 convolutions and matmuls (screening speed)')
    a.add_argument('--synthetic', type=int, default=0, help='N random training images instead of --data')
    a.add_argument('--barrier', default='', help='DIR:N: wait until N processes have reached training')
    a.add_argument('--summarize', nargs='+', metavar='LOG', help='print one line per log and exit')
    a.add_argument('--plan', nargs='+', metavar='LOG', help='timing logs: print the runs of --runs that fit')
    a.add_argument('--runs', default='', help='--plan: "name:bits:epochs:seed ..."')
    a.add_argument('--drop', default='', help='--plan: groups to drop in turn, e.g. "f,j e,i"')
    a.add_argument('--budget', type=float, default=450, help='--plan: seconds')
    o = a.parse_args()
    if o.summarize:
        return summarize(o.summarize)
    if o.plan:
        return plan(o)
    if not o.data and not o.synthetic:
        a.error('--data is required (or --synthetic N)')
    return train(o)


if __name__ == '__main__':
    sys.exit(main())
