#!/usr/bin/python3
"""Does a conditional model draw the class it is asked for? An independent judge: a small MLP
classifier (784-256-10, ReLU, Adam, 5 epochs, seed 0) trained with PyTorch on the Fashion-MNIST
training images labels `clvae sample --class K --count 100` for K = 0..9; the score is the share
of samples it labels K, pooled and per class.

  /usr/bin/python3 tools/cvae_classify.py CLVAE MODEL [--control MODEL] [--torch-epochs N]

MODEL: a conditional checkpoint (train --conditional). --control: an unconditional checkpoint,
whose plain samples (the same z) are scored against each K the same way (chance: ~0.1).
--torch-epochs N: also train the same conditional VAE in PyTorch (dense 784+10 -> 512 -> 2+2,
2+10 -> 512 -> 784, 784*MSE + KL, Adam 1e-3 / 0.9 / 0.999 / 1e-7, batch 256, Glorot-normal
kernels, zero biases) for N epochs on this machine and score its samples (z ~ N(0, I), 100 a
class) with the same judge: the reference measured in the same run.
Prints one line per model and a JSON summary line last. Needs Debian's python3-torch and
python3-pil (/usr/bin/python3), the Fashion-MNIST package, and clvae."""
import gzip
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

DATA = '/usr/share/datasets/fashion-mnist'
NAMES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']


def idx(name, offset):
    return np.frombuffer(gzip.open(os.path.join(DATA, name)).read(), np.uint8, offset=offset)


def load():
    xtr = torch.from_numpy(idx('train-images-idx3-ubyte.gz', 16).reshape(-1, 784).astype(np.float32) / 255)
    ytr = torch.from_numpy(idx('train-labels-idx1-ubyte.gz', 8).astype(np.int64))
    xte = torch.from_numpy(idx('t10k-images-idx3-ubyte.gz', 16).reshape(-1, 784).astype(np.float32) / 255)
    yte = torch.from_numpy(idx('t10k-labels-idx1-ubyte.gz', 8).astype(np.int64))
    return xtr, ytr, xte, yte


def judge(xtr, ytr, xte, yte):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(5):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 128):
            b = perm[i:i + 128]
            loss = torch.nn.functional.cross_entropy(net(xtr[b]), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
    return net, acc


def tiles(path, n=100):
    """The first n 28x28 tiles of a clvae mosaic (row-major), as (n, 784) floats in 0..1."""
    a = np.asarray(Image.open(path).convert('L'), dtype=np.float32) / 255
    cols = a.shape[1] // 28
    out = [a[(t // cols) * 28:(t // cols + 1) * 28, (t % cols) * 28:(t % cols + 1) * 28].reshape(784) for t in range(n)]
    return torch.from_numpy(np.stack(out))


def score(net, samples):
    """samples[k]: (100, 784) drawn for class k -> (pooled, per-class) share labelled k."""
    with torch.no_grad():
        per = [(net(s).argmax(1) == k).float().mean().item() for k, s in enumerate(samples)]
    return sum(per) / len(per), per


def clvae_samples(clvae, model, conditional):
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(10):
            png = os.path.join(tmp, f'{k}.png')
            args = [clvae, 'sample', '--model', model, '--count', '100', '--seed', '1', '--out', png]
            if conditional:
                args += ['--class', str(k)]
            p = subprocess.run(args, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f'cvae_classify: {" ".join(args)} failed ({p.returncode}): {p.stderr.strip()}')
            out.append(tiles(png))
    return out


def torch_cvae(xtr, ytr, xte, yte, epochs):
    """The same conditional VAE in PyTorch; its test loss and its samples, 100 a class."""
    torch.manual_seed(1)
    L, K = 2, 10

    def dense(i, o):
        layer = torch.nn.Linear(i, o)
        with torch.no_grad():  # TF.js's Glorot normal, truncated at 2 sigma; zero bias
            torch.nn.init.trunc_normal_(layer.weight, 0, (2 / (i + o)) ** 0.5, -2 * (2 / (i + o)) ** 0.5,
                                        2 * (2 / (i + o)) ** 0.5)
            layer.bias.zero_()
        return layer
    enc, heads, dec1, dec2 = dense(784 + K, 512), dense(512, 2 * L), dense(L + K, 512), dense(512, 784)
    params = [p for m in (enc, heads, dec1, dec2) for p in m.parameters()]
    opt = torch.optim.Adam(params, 1e-3, betas=(0.9, 0.999), eps=1e-7)

    def loss_of(x, y):
        c = torch.nn.functional.one_hot(y, K).float()
        h = heads(torch.relu(enc(torch.cat([x, c], 1))))
        mu, lv = h[:, :L], h[:, L:]
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        p = torch.sigmoid(dec2(torch.relu(dec1(torch.cat([z, c], 1)))))
        rec = 784 * ((p - x) ** 2).mean(1)
        kl = -0.5 * (1 + lv - mu ** 2 - lv.exp()).sum(1)
        return (rec + kl).mean()
    for _ in range(epochs):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 256):
            b = perm[i:i + 256]
            loss = loss_of(xtr[b], ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        test = sum(loss_of(xte[i:i + 1000], yte[i:i + 1000]).item() * 1000 for i in range(0, 10000, 1000)) / 10000
        g = torch.Generator().manual_seed(7)
        samples = []
        for k in range(K):
            z = torch.randn(100, L, generator=g)
            c = torch.nn.functional.one_hot(torch.full((100,), k), K).float()
            samples.append(torch.sigmoid(dec2(torch.relu(dec1(torch.cat([z, c], 1))))))
    return test, samples


def main():
    args = sys.argv[1:]
    if len(args) < 2 or args[0].startswith('-'):
        sys.exit(__doc__)
    clvae, model, rest = args[0], args[1], args[2:]
    control, torch_epochs = None, 0
    while rest:
        if rest[0] == '--control' and len(rest) > 1:
            control, rest = rest[1], rest[2:]
        elif rest[0] == '--torch-epochs' and len(rest) > 1 and rest[1].isdigit() and int(rest[1]) > 0:
            torch_epochs, rest = int(rest[1]), rest[2:]
        else:
            sys.exit(f'cvae_classify: unknown or incomplete option {rest[0]!r}\n\n{__doc__}')
    torch.set_num_threads(2)
    xtr, ytr, xte, yte = load()
    net, acc = judge(xtr, ytr, xte, yte)
    print(f'judge: MLP 784-256-10, test accuracy {acc:.4f}')
    result = {'judge_accuracy': round(acc, 4)}
    runs = [('clvae', model, True)] + ([('control', control, False)] if control else [])
    for name, path, cond in runs:
        pooled, per = score(net, clvae_samples(clvae, path, cond))
        worst = min(range(10), key=lambda k: per[k])
        print(f'{name}: pooled {pooled:.3f}, worst class {per[worst]:.2f} ({NAMES[worst]}), per class '
              + ' '.join(f'{p:.2f}' for p in per))
        result[name] = {'pooled': round(pooled, 4), 'worst': round(per[worst], 4), 'per_class': [round(p, 4) for p in per]}
    if torch_epochs:
        test, samples = torch_cvae(xtr, ytr, xte, yte, torch_epochs)
        pooled, per = score(net, samples)
        worst = min(range(10), key=lambda k: per[k])
        print(f'pytorch ({torch_epochs} epochs, test loss {test:.2f}): pooled {pooled:.3f}, worst class {per[worst]:.2f} '
              f'({NAMES[worst]}), per class ' + ' '.join(f'{p:.2f}' for p in per))
        result['pytorch'] = {'epochs': torch_epochs, 'test_loss': round(test, 3), 'pooled': round(pooled, 4),
                             'worst': round(per[worst], 4), 'per_class': [round(p, 4) for p in per]}
    print(json.dumps(result))


if __name__ == '__main__':
    main()
