# whitening-spread.py - why issue 21 did not screen airbench94's whitened first layer under the paper's 4-bit quantizer:
# the filters it would put in conv1 (each eigenvector of the covariance of 3x3x3 patches of CIFAR-10, normalized as q4
# does, over the square root of its eigenvalue plus eps) and what one 4-bit scale per tensor (max|W| / 7) makes of them.
# Run: /usr/bin/python3 scripts/screening/whitening-spread.py (numpy; reads data/cifar-10-batches-bin/data_batch_1.bin)
import numpy as np
raw = np.fromfile('data/cifar-10-batches-bin/data_batch_1.bin', np.uint8).reshape(-1, 3073)[:5000, 1:]
x = raw.reshape(-1, 3, 32, 32).astype(np.float64) / 255.0
mean = np.array([0.4914, 0.4822, 0.4465])[None, :, None, None]; std = np.array([0.2023, 0.1994, 0.2010])[None, :, None, None]
x = (x - mean) / std
p = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))  # n,3,30,30,3,3
p = p.transpose(0, 2, 3, 1, 4, 5).reshape(-1, 27)
cov = np.cov(p[::7].T)
ev, vec = np.linalg.eigh(cov)
for eps in (5e-4, 1e-2):
    scale = 1 / np.sqrt(ev + eps)
    filt = vec.T * scale[:, None]          # each filter: an eigenvector over sqrt(eigenvalue + eps)
    mx = np.abs(filt).max()
    step = mx / 7
    lv = np.round(filt / step)
    top = np.abs(lv[-3:]).max(axis=1)      # the three strongest components' largest level
    print(f"eps {eps}: eigenvalues {ev[-1]:.3g} .. {ev[0]:.3g}; filter norms {scale.max():.3g} .. {scale.min():.3g} "
          f"(ratio {scale.max()/scale.min():.0f}); 4-bit levels of the 3 strongest components' filters: largest |level| {top.astype(int).tolist()}, "
          f"nonzero weights {[int((lv[k] != 0).sum()) for k in (-1, -2, -3)]} of 27")
