"""(Copy of ../shared/tools/torch_seed_models.py kept in the repository so that
scripts/gpu-check can run it on a GPU machine, where ../shared is absent.
Added here: TORCH_COMPILE=1 wraps each model in torch.compile. Taken from there:
TORCH_AUTOCAST=bf16, and `unsupported` where PyTorch cannot run a model that way.)

Reference builds of the seed's six CIFAR-10 models in PyTorch (written here from
the seed README's description and parameter table), used as the peer for
parameter counts, correctness and CPU throughput. Run with Debian's python3-torch:
  /usr/bin/python3 torch_seed_models.py THREADS BATCH STEPS [model,model,...]
On a 2-core machine PyTorch's OpenMP threads and OpenBLAS's threads spin against each other;
GOMP_SPINCOUNT=10000 (set below unless already set) gives PyTorch its best overall speed here.
For the mixers at batch 500, OMP_WAIT_POLICY=passive is up to 15% faster still: compare against
PyTorch's best setting, not its worst."""
import os, sys, time
os.environ.setdefault('GOMP_SPINCOUNT', '10000')
import torch, torch.nn as nn, torch.nn.functional as F

def cnn(kernels, in_ch=3, hw=32, classes=10, bn=True):
    layers, c, n = [], in_ch, len(kernels)
    for i, k in enumerate(kernels):
        if k == 'p':
            layers.append(nn.MaxPool2d(3, stride=2)); hw = (hw - 3) // 2 + 1
            continue
        layers.append(nn.Conv2d(c, k, 3, 1, 1))
        if bn: layers.append(nn.BatchNorm2d(k))
        if i != n - 1: layers.append(nn.ReLU())
        c = k
    layers += [nn.Flatten(), nn.Linear(c * hw * hw, classes)]
    return nn.Sequential(*layers)

class ResSmall(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.b = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c), nn.ReLU(),
                            nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c))
    def forward(s, x): return F.relu(s.b(x) + x)

class PadPool(nn.Module):
    def __init__(s, cin, cout): super().__init__(); s.d = cout - cin
    def forward(s, x): return F.pad(F.max_pool2d(x, 3, 2), (0, 0, 0, 0, 0, s.d))

def resnet(kernels, in_ch=3, classes=10):
    L = [nn.Conv2d(in_ch, kernels[0], 7, 2, 3), nn.MaxPool2d(3, 2, 1)]
    for i, k in enumerate(kernels):
        if i < len(kernels) - 1 and k != kernels[i + 1]: L.append(PadPool(k, kernels[i + 1]))
        else: L.append(ResSmall(k))
    probe = nn.Sequential(*L).eval()(torch.ones(1, in_ch, 32, 32))
    L += [nn.Flatten(), nn.Linear(probe.numel(), classes)]
    return nn.Sequential(*L)

class Mixer(nn.Module):
    def __init__(s, p, C, N, in_ch=3, hw=32, classes=10):
        super().__init__()
        S = hw * hw // (p * p); s.S, s.D = S, in_ch * p * p
        s.embed = nn.Linear(s.D, C)
        s.blocks = nn.ModuleList()
        for _ in range(N):
            s.blocks.append(nn.ModuleList([nn.LayerNorm(S), nn.Linear(S, S), nn.Linear(S, S),
                                           nn.LayerNorm(C), nn.Linear(C, C), nn.Linear(C, C)]))
        s.norm = nn.LayerNorm([S, C]); s.head = nn.Linear(S, classes)
    def forward(s, x):
        x = s.embed(x.reshape(-1, s.S, s.D))
        for ln1, a1, a2, ln2, b1, b2 in s.blocks:
            x = x + a2(F.gelu(a1(ln1(x.transpose(1, 2))))).transpose(1, 2)
            x = x + b2(F.gelu(b1(ln2(x))))
        return s.head(s.norm(x).mean(2))

def seed_models():
    return {
        'normal_cnn': cnn([16, 16, 'p', 32, 32, 'p', 64, 64, 'p', 128, 128, 'p', 256, 256]),
        'residual_cnn': resnet([32, 32, 64, 64, 64, 64, 128, 128, 128]),
        'mlp_mixer_S4': Mixer(4, 128, 6), 'mlp_mixer_S2': Mixer(2, 128, 6),
        'mlp_mixer_B4': Mixer(4, 192, 8), 'mlp_mixer_B2': Mixer(2, 192, 8),
    }

if __name__ == '__main__':
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    only = sys.argv[4].split(',') if len(sys.argv) > 4 else None
    # TORCH_DEVICE=cuda runs on a GPU (cudnn.benchmark on; TORCH_TF32=1 also allows TF32 matmuls).
    dev = torch.device(os.environ.get('TORCH_DEVICE', 'cpu'))
    if dev.type == 'cuda':
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = os.environ.get('TORCH_TF32') == '1'
    sync = (lambda: torch.cuda.synchronize()) if dev.type == 'cuda' else (lambda: None)
    torch.manual_seed(0)
    # TORCH_AUTOCAST=bf16 runs forward and loss under torch.autocast(bfloat16): PyTorch's own mixed precision
    # (on a CPU with AMX or AVX512-BF16 its oneDNN convolutions and matmuls then run in bf16).
    amp = os.environ.get('TORCH_AUTOCAST') == 'bf16'
    env = {k: os.environ[k] for k in ('GOMP_SPINCOUNT', 'OMP_WAIT_POLICY', 'OPENBLAS_NUM_THREADS', 'TORCH_TF32',
                                      'TORCH_COMPILE', 'TORCH_AUTOCAST') if k in os.environ}
    where = torch.cuda.get_device_name(0) if dev.type == 'cuda' else f'{torch.get_num_threads()} threads'
    print(f'# torch {torch.__version__}, {where}, batch {batch}, env {env}', flush=True)
    for name, m in seed_models().items():
        if only and name not in only: continue
        m = m.to(dev)
        nparams = sum(p.numel() for p in m.parameters())
        if os.environ.get('TORCH_COMPILE') == '1':
            m = torch.compile(m)
        opt = torch.optim.Adam(m.parameters(), 1e-3, weight_decay=1e-4)
        x = torch.randn(batch, 3, 32, 32, device=dev); y = torch.randint(0, 10, (batch,), device=dev)
        def step():
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(m(x), y)
            opt.zero_grad(); loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
        try:
            for _ in range(3 if dev.type == 'cuda' else 1): step()
        except RuntimeError as e:  # e.g. PyTorch 1.13's CPU autocast fails on the mixers' LayerNorm
            print(f'{name:14s} params={nparams:>9,d} unsupported: {str(e).splitlines()[0][:100]}', flush=True)
            continue
        sync(); t = time.perf_counter()
        for _ in range(steps): step()
        sync(); dt = (time.perf_counter() - t) / steps
        print(f'{name:14s} params={nparams:>9,d} train_img_per_s={batch/dt:8.1f} step_s={dt:.3f}', flush=True)
