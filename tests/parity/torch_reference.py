#!/usr/bin/env python3
"""PyTorch reference for the parity tests: for each case of cases.json, builds
the equivalent torch module with epochd's parameter names, and writes

  OUT/<case>.init.safetensors  initial parameters and buffers (+ num_batches_tracked)
  OUT/<case>.ref.safetensors   x, labels, the training-mode output "out", "loss",
                               every gradient "grad.<name>" of the first step,
                               per-step "losses", "lr", "grad_norm" (3 steps),
                               the parameters and buffers after 3 optimiser
                               steps "step3.<name>", "eval_out" (the
                               evaluation-mode output after the 3 steps), and
                               all of these again from a float64 run of the
                               same module as "f64.<tensor>" (F64)

Training: the same batch every step; loss = CrossEntropyLoss on the model's
output (with head softmax/sigmoid that is cross-entropy applied to the
probabilities, as the seed did); clip_grad_norm_(grad_clip) when grad_clip > 0;
lr_t = lr * (t + 1) / W for t < W, W = round(warmup_epochs * steps_per_epoch)
(epochd's eng_schedule_lr); optimiser Adam (L2 weight decay) / AdamW / SGD.

  /usr/bin/python3 torch_reference.py CASES_JSON OUT_DIR [CASE ...]
  /usr/bin/python3 torch_reference.py --check-export CASES_JSON OUT_DIR [CASE ...]
      loads each <case>.epochd.safetensors (epochd's export after the three
      steps, written by parity_check) with load_state_dict(strict=True) and
      compares the evaluation-mode output with PyTorch's own "eval_out"

Exit status 0, 1 on error, 77 when torch is missing. float32, CPU, fixed seeds.

TORCH_AUTOCAST=bf16: the float32 run's forward passes and losses run under
torch.autocast('cpu', torch.bfloat16) (PyTorch's mixed precision: its
convolutions and matrix products in bf16), the reference for epochd's
precision bf16; the float64 run stays exact. --check-export is then not
meaningful (its reference output is autocast's) and is skipped.
"""
import copy
import json
import math
import os
import struct
import sys
import zlib

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit(77)

ACTS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "gelu": lambda: nn.GELU(),
    "tanh": lambda: nn.Tanh(),
    "sigmoid": lambda: nn.Sigmoid(),
}


# ---- safetensors, written by hand (the package is not in Debian) ----

def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, tensor) in file order; F32, F64, I64 or I32."""
    dtypes = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32"}
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors:
        t = t.detach().contiguous().cpu()
        raw = t.numpy().tobytes()  # little-endian on every platform we run on
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ---- modules with epochd's names ----

class Residual(nn.Module):
    """sequential's residual: post(x + layers(x)) (names "<i>.layers.<j>")."""

    def __init__(self, layers, post="none"):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.post = post

    def forward(self, x):
        y = x + self.layers(x)
        return F.relu(y) if self.post == "relu" else y


class Transpose(nn.Module):
    """sequential's transpose: swaps the last two dimensions."""

    def forward(self, x):
        return x.transpose(-1, -2)


class Mean(nn.Module):
    """sequential's mean: dim counts within one sample (the batch excluded)."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim + 1 if dim >= 0 else dim

    def forward(self, x):
        return x.mean(self.dim)


class Patches(nn.Module):
    """sequential's patches: (C, H, W) -> (H*W/p^2, C*p*p), features (c, py, px)."""

    def __init__(self, in_shape, p):
        super().__init__()
        self.c, self.h, self.w = in_shape
        self.p = p

    def forward(self, x):
        B, p = x.shape[0], self.p
        x = x.reshape(B, self.c, self.h // p, p, self.w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(B, (self.h // p) * (self.w // p), self.c * p * p)


class Reshape(nn.Module):
    """sequential's reshape: the same values under another per-sample shape."""

    def __init__(self, shape):
        super().__init__()
        self.shape = list(shape)

    def forward(self, x):
        return x.reshape([x.shape[0]] + self.shape)


class PadChannels(nn.Module):
    """sequential's pad_channels: zero channels appended to an image."""

    def __init__(self, d):
        super().__init__()
        self.d = d

    def forward(self, x):
        return F.pad(x, (0, 0, 0, 0, 0, self.d))


class MixerLayer(nn.ModuleList):
    """sequential's mixer: the seed's mixer layer on (S, C) with explicit
    transposes; parameters "<i>.0.weight" ... "<i>.5.bias" as in Mixer."""

    def __init__(self, S, C):
        super().__init__([nn.LayerNorm(S), nn.Linear(S, S), nn.Linear(S, S),
                          nn.LayerNorm(C), nn.Linear(C, C), nn.Linear(C, C)])

    def forward(self, x):
        ln1, a1, a2, ln2, b1, b2 = self
        x = x + a2(F.gelu(a1(ln1(x.transpose(1, 2))))).transpose(1, 2)
        return x + b2(F.gelu(b1(ln2(x))))


class Block(nn.Module):
    """resnet's residual block: relu(x + b(x)) (names "<i>.b.<j>")."""

    def __init__(self, c, kind):
        super().__init__()
        if kind == "small":
            L = [nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c)]
        else:
            q = c // 4
            L = [nn.Conv2d(c, q, 1, 1, 0), nn.BatchNorm2d(q), nn.ReLU(), nn.Conv2d(q, q, 3, 1, 1), nn.BatchNorm2d(q),
                 nn.ReLU(), nn.Conv2d(q, c, 1, 1, 0), nn.BatchNorm2d(c)]
        self.b = nn.Sequential(*L)

    def forward(self, x):
        return F.relu(x + self.b(x))


class PadPool(nn.Module):
    """resnet's padding block: MaxPool2d(3, 2) then zero channels up to cout."""

    def __init__(self, cin, cout):
        super().__init__()
        self.d = cout - cin

    def forward(self, x):
        return F.pad(F.max_pool2d(x, 3, 2), (0, 0, 0, 0, 0, self.d))


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


class Mixer(nn.Module):
    """The seed's MLP-Mixer (scripts/torch_seed_models.py) with patching and head
    options: explicit transposes, LayerNorm(S) on the transposed tokens."""

    def __init__(self, in_shape, classes, p, hidden, depth, patching, head):
        super().__init__()
        c, h, w = in_shape
        self.c, self.h, self.w, self.p = c, h, w, p
        S = (h // p) * (w // p)
        self.S, self.D = S, c * p * p
        self.patching, self.head_kind = patching, head
        self.embed = nn.Linear(self.D, hidden)
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            self.blocks.append(nn.ModuleList([nn.LayerNorm(S), nn.Linear(S, S), nn.Linear(S, S),
                                              nn.LayerNorm(hidden), nn.Linear(hidden, hidden),
                                              nn.Linear(hidden, hidden)]))
        self.norm = nn.LayerNorm([S, hidden])
        self.head = nn.Linear(S, classes)

    def tokens(self, x):
        B, p = x.shape[0], self.p
        if self.patching == "reshape":
            return x.reshape(B, self.S, self.D)
        # true patches: patch index row-major over (h/p, w/p), features (c, py, px)
        x = x.reshape(B, self.c, self.h // p, p, self.w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(B, self.S, self.D)

    def forward(self, x):
        x = self.embed(self.tokens(x))
        for ln1, a1, a2, ln2, b1, b2 in self.blocks:
            x = x + a2(F.gelu(a1(ln1(x.transpose(1, 2))))).transpose(1, 2)
            x = x + b2(F.gelu(b1(ln2(x))))
        y = self.head(self.norm(x).mean(2))
        return apply_head(y, self.head_kind)


def apply_head(y, head):
    if head == "softmax":
        return torch.softmax(y, dim=-1)
    if head == "sigmoid":
        return torch.sigmoid(y)
    return y


def head_layers(head):
    if head == "softmax":
        return [nn.Softmax(dim=-1)]
    if head == "sigmoid":
        return [nn.Sigmoid()]
    return []


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def window_out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def build_mlp(m, in_shape, classes):
    L, prev = [], in_shape[0]
    if len(in_shape) > 1:
        L.append(nn.Flatten())
        prev = numel(in_shape)
    units = m["units"]
    for i, u in enumerate(units):
        L.append(nn.Linear(prev, u, bias=m["bias"]))
        if m["batch_norm"]:
            L.append(nn.BatchNorm1d(u, affine=False))
        if i + 1 < len(units) and m["activation"] != "none":
            L.append(ACTS[m["activation"]]())
        prev = u
    assert prev == classes
    return nn.Sequential(*(L + head_layers(m["head"])))


def build_cnn(m, in_shape, classes):
    c, h, w = in_shape
    L, ch = [], m["channels"]
    for i, e in enumerate(ch):
        if e == "p":
            L.append(nn.MaxPool2d(m["pool_kernel"], m["pool_stride"]))
            h, w = window_out(h, m["pool_kernel"], m["pool_stride"], 0), window_out(w, m["pool_kernel"], m["pool_stride"], 0)
            continue
        L.append(nn.Conv2d(c, e, 3, 1, 1))
        if m["batch_norm"]:
            L.append(nn.BatchNorm2d(e))
        if i + 1 < len(ch) and m["activation"] != "none":
            L.append(ACTS[m["activation"]]())
        c = e
    L += [nn.Flatten(), nn.Linear(c * h * w, classes)]
    return nn.Sequential(*(L + head_layers(m["head"])))


def build_resnet(m, in_shape, classes):
    c, h, w = in_shape
    ch = m["channels"]
    L = [nn.Conv2d(c, ch[0], 7, 2, 3), nn.MaxPool2d(3, 2, 1)]
    h, w = window_out(window_out(h, 7, 2, 3), 3, 2, 1), window_out(window_out(w, 7, 2, 3), 3, 2, 1)
    for i, k in enumerate(ch):
        if i + 1 < len(ch) and k != ch[i + 1]:
            L.append(PadPool(k, ch[i + 1]))
            h, w = window_out(h, 3, 2, 0), window_out(w, 3, 2, 0)
        else:
            L.append(Block(k, m["block"]))
    L += [nn.Flatten(), nn.Linear(ch[-1] * h * w, classes)]
    return nn.Sequential(*(L + head_layers(m["head"])))


def build_layers(layers, shape):
    """shape: the per-sample shape entering the list; returns (modules, shape)."""
    out = []
    for l in layers:
        k = l["kind"]
        if k == "linear":
            out.append(nn.Linear(shape[-1], l["out"], bias=l["bias"]))
            shape = shape[:-1] + [l["out"]]
        elif k == "conv2d":
            out.append(nn.Conv2d(shape[0], l["out"], l["kernel"], l["stride"], l["padding"], bias=l["bias"]))
            shape = [l["out"], window_out(shape[1], l["kernel"], l["stride"], l["padding"]),
                     window_out(shape[2], l["kernel"], l["stride"], l["padding"])]
        elif k in ("maxpool", "avgpool"):
            cls = nn.MaxPool2d if k == "maxpool" else nn.AvgPool2d
            out.append(cls(l["kernel"], l["stride"], l["padding"]))
            shape = [shape[0], window_out(shape[1], l["kernel"], l["stride"], l["padding"]),
                     window_out(shape[2], l["kernel"], l["stride"], l["padding"])]
        elif k == "batchnorm":
            cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            out.append(cls(shape[0], affine=l["affine"]))
        elif k == "layernorm":
            out.append(nn.LayerNorm(shape[len(shape) - l["dims"]:], elementwise_affine=l["affine"]))
        elif k == "leaky_relu":
            out.append(nn.LeakyReLU(l["slope"]))
        elif k in ACTS:
            out.append(ACTS[k]())
        elif k == "softmax":
            out.append(nn.Softmax(dim=-1))
        elif k == "global_avgpool":
            out.append(GlobalAvgPool())
            shape = [shape[0]]
        elif k == "flatten":
            out.append(nn.Flatten())
            shape = [numel(shape)]
        elif k == "dropout":
            assert l["p"] == 0, "dropout masks cannot match torch's RNG: only p = 0 is comparable"
            out.append(nn.Dropout(l["p"]))
        elif k == "residual":
            inner, s2 = build_layers(l["layers"], shape)
            assert s2 == shape
            out.append(Residual(inner, l["post"]))
        elif k == "transpose":
            out.append(Transpose())
            shape = shape[:-2] + [shape[-1], shape[-2]]
        elif k == "mean":
            out.append(Mean(l["dim"]))
            d = l["dim"] % len(shape)
            shape = shape[:d] + shape[d + 1:] or [1]
        elif k == "patches":
            p = l["patch_size"]
            out.append(Patches(shape, p))
            shape = [(shape[1] // p) * (shape[2] // p), shape[0] * p * p]
        elif k == "reshape":
            assert numel(l["shape"]) == numel(shape)
            out.append(Reshape(l["shape"]))
            shape = list(l["shape"])
        elif k == "pad_channels":
            out.append(PadChannels(l["out"] - shape[0]))
            shape = [l["out"]] + shape[1:]
        elif k == "mixer":
            out.append(MixerLayer(shape[0], shape[1]))
        else:
            raise ValueError("unknown layer kind " + k)
    return out, shape


def build(case):
    m, in_shape, classes = case["model"], case["input"], case["classes"]
    t = m["template"]
    if t == "mlp":
        return build_mlp(m, in_shape, classes)
    if t == "cnn":
        return build_cnn(m, in_shape, classes)
    if t == "resnet":
        return build_resnet(m, in_shape, classes)
    if t == "mlp_mixer":
        return Mixer(in_shape, classes, m["patch_size"], m["hidden"], m["depth"], m["patching"], m["head"])
    if t == "sequential":
        layers, shape = build_layers(m["layers"], list(in_shape))
        assert shape == [classes], f"sequential ends in {shape}, expected [{classes}]"
        return nn.Sequential(*layers)
    raise ValueError("unknown template " + t)


def randomize_norms(model, g):
    """PyTorch initialises norm layers to weight 1, bias 0, running stats 0/1;
    random values make every term of the norm arithmetic visible."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
                if getattr(mod, "weight", None) is not None:
                    mod.weight.copy_(1 + 0.3 * torch.randn(mod.weight.shape, generator=g))
                    mod.bias.copy_(0.3 * torch.randn(mod.bias.shape, generator=g))
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                mod.running_mean.copy_(0.5 * torch.randn(mod.running_mean.shape, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))


def warmup_steps(tr):
    return int(math.floor(tr["warmup_epochs"] * tr["steps_per_epoch"] + 0.5))  # llround for x >= 0


def lr_at(tr, step):
    w = warmup_steps(tr)
    lr = float(tr["lr"])
    return lr * (step + 1) / w if step < w else lr


def make_optimizer(tr, params):
    o = tr["optimizer"]
    if o == "adam":
        return torch.optim.Adam(params, lr=tr["lr"], betas=(tr["beta1"], tr["beta2"]), eps=tr["eps"],
                                weight_decay=tr["weight_decay"])
    if o == "adamw":
        return torch.optim.AdamW(params, lr=tr["lr"], betas=(tr["beta1"], tr["beta2"]), eps=tr["eps"],
                                 weight_decay=tr["weight_decay"])
    if o == "sgd":
        return torch.optim.SGD(params, lr=tr["lr"], momentum=tr["momentum"], nesterov=tr["nesterov"],
                               weight_decay=tr["weight_decay"])
    raise ValueError("unknown optimizer " + o)


STEPS = 3


def noise_gradients(model):
    """Names of parameters whose gradient is mathematically zero: the bias of a
    Linear/Conv2d that feeds a (training-mode) BatchNorm directly, which
    subtracts it again with the batch mean. Both implementations compute
    float32 rounding noise there (~1e-7 of the model's largest gradient), and
    Adam's normalisation m / sqrt(v) turns that noise into full-size steps of
    arbitrary sign, so the two trajectories part for reasons that say nothing
    about correctness. The checker compares these gradients on the model's
    gradient scale; then both sides zero them before clipping and stepping
    (PARITY_KEEP_NOISE=1 keeps them, to measure the effect)."""
    names = []
    for prefix, mod in model.named_modules():
        if not isinstance(mod, nn.Sequential):
            continue
        kids = list(mod.named_children())
        for (na, a), (_, b) in zip(kids, kids[1:]):
            if isinstance(a, (nn.Linear, nn.Conv2d)) and a.bias is not None and \
                    isinstance(b, (nn.BatchNorm1d, nn.BatchNorm2d)):
                names.append((prefix + "." if prefix else "") + na + ".bias")
    return names


def autocast(x):
    """bf16 autocast for the float32 run when TORCH_AUTOCAST=bf16."""
    on = os.environ.get("TORCH_AUTOCAST") == "bf16" and x.dtype == torch.float32
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=on)


def train(model, x, labels, tr, zeroed):
    """The three steps; returns the reference tensors in file order."""
    params = [p for _, p in model.named_parameters()]
    by_name = dict(model.named_parameters())
    opt = make_optimizer(tr, params)
    loss_fn = nn.CrossEntropyLoss()
    ref, losses, lrs, norms = [], [], [], []
    model.train()
    for step in range(STEPS):
        opt.zero_grad(set_to_none=False)
        with autocast(x):
            out = model(x)
            loss = loss_fn(out, labels)
        loss.backward()
        if step == 0:
            ref.append(("out", out.detach().to(x.dtype).clone()))
            ref.append(("loss", loss.detach().to(x.dtype).reshape(1).clone()))
            for k, p in model.named_parameters():
                ref.append(("grad." + k, p.grad.detach().clone()))
        norm = torch.norm(torch.stack([torch.norm(p.grad.detach(), 2.0) for p in params]), 2.0)
        for k in zeroed:
            by_name[k].grad.zero_()
        if tr["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(params, tr["grad_clip"])
        lr = lr_at(tr, step)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        losses.append(loss.item())
        lrs.append(lr)
        norms.append(norm.item())
    for k, v in model.state_dict().items():
        ref.append(("step3." + k, v.detach().clone()))
    model.eval()
    with torch.no_grad(), autocast(x):
        ref.append(("eval_out", model(x).to(x.dtype).clone()))
    dt = x.dtype
    ref += [("losses", torch.tensor(losses, dtype=dt)), ("lr", torch.tensor(lrs, dtype=torch.float32)),
            ("grad_norm", torch.tensor(norms, dtype=dt))]
    return ref, norms


def run_case(case, out_dir):
    name = case["name"]
    seed = zlib.crc32(name.encode())  # fixed per case, independent of the case order
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    model = build(case)
    randomize_norms(model, g)
    B = case["batch"]
    x = torch.randn([B] + case["input"], generator=g)
    labels = torch.randint(0, case["classes"], (B,), generator=g)

    init = [(k, v.clone()) for k, v in model.state_dict().items()]
    write_safetensors(os.path.join(out_dir, name + ".init.safetensors"), init, {"case": name})

    tr = case["train"]
    noise = noise_gradients(model)
    zeroed = [] if os.environ.get("PARITY_KEEP_NOISE", "0") != "0" else noise
    # The same run in float64 from the same start: how far float32 itself
    # (PyTorch's) is from the exact result, the yardstick for any tensor
    # where epochd and PyTorch differ by more than the tolerance.
    model64 = copy.deepcopy(model).double()
    ref, norms = train(model, x, labels, tr, zeroed)
    ref64, _ = train(model64, x.double(), labels, tr, zeroed)
    ref = [("x", x), ("labels", labels)] + ref + [("f64." + k, v) for k, v in ref64 if k != "lr"]
    meta = {"case": name, "torch": torch.__version__,
            "clipped_steps": str(sum(1 for n in norms if 0 < tr["grad_clip"] < n)),
            "noise_grads": ",".join(noise), "zeroed_grads": ",".join(zeroed)}
    write_safetensors(os.path.join(out_dir, name + ".ref.safetensors"), ref, meta)
    return sum(p.numel() for p in model.parameters()), norms


def read_safetensors(path):
    """{name: tensor} of a safetensors file (F32, F64, I64, I32)."""
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=dtypes[e["dtype"]]) if end > b else \
            torch.zeros(0, dtype=dtypes[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out


def check_export(case, out_dir):
    """Loads epochd's export (parity_check writes it after the three steps)
    into the PyTorch module with load_state_dict(strict=True) and checks its
    evaluation-mode output against PyTorch's own after the same steps."""
    name = case["name"]
    path = os.path.join(out_dir, name + ".epochd.safetensors")
    if not os.path.exists(path):
        print(f"{name}: no export {path} (the C checker did not finish this case)")
        return False
    model = build(case)
    model.load_state_dict(read_safetensors(path), strict=True)
    model.eval()
    ref = read_safetensors(os.path.join(out_dir, name + ".ref.safetensors"))
    with torch.no_grad():
        y = model(ref["x"]).double()
    want = ref["eval_out"].double()
    err = ((y - want).abs().max() / max(want.abs().max().item(), 1e-6)).item()
    tracked = [v.item() for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")]
    ok = err <= 1e-4 and all(t == STEPS for t in tracked)
    print(f"{name:36s} export loads (strict), eval_out error {err:.2e}, num_batches_tracked {tracked}"
          f"{'' if ok else '  FAIL'}")
    return ok


def main(argv):
    export = len(argv) > 1 and argv[1] == "--check-export"
    if export:
        argv = argv[:1] + argv[2:]
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    with open(argv[1]) as f:
        cases = json.load(f)["cases"]
    only = set(argv[3:])
    if export and os.environ.get("TORCH_AUTOCAST") == "bf16":
        print("export check skipped: the references were written under bf16 autocast")
        return 0
    if export:
        bad = [c["name"] for c in cases if (not only or c["name"] in only) and not check_export(c, argv[2])]
        if bad:
            print("export check failed: " + ", ".join(bad))
        return 1 if bad else 0
    os.makedirs(argv[2], exist_ok=True)
    for case in cases:
        if only and case["name"] not in only:
            continue
        n, norms = run_case(case, argv[2])
        clip = case["train"]["grad_clip"]
        print(f"{case['name']:36s} params={n:6d} grad_norm={' '.join(f'{v:.3g}' for v in norms)}"
              f"{'' if clip <= 0 else f' (clip {clip})'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
