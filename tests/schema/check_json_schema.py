#!/usr/bin/env python3
"""The editors' JSON Schema (schema/spec.schema.json) against the spec fixtures.

It must be a valid draft-07 schema, accept every good fixture, reject
specs with mistakes the validator also rejects, and name every key that
docs/spec.md documents. Exits 77 (skipped) without jsonschema and PyYAML, 1
instead with EPOCHD_TEST_REQUIRED=1 (-Djson_schema_tests=enabled).
"""
import json
import os
import re
import sys

try:
    import jsonschema
    import yaml
except ImportError as e:
    if os.environ.get("EPOCHD_TEST_REQUIRED") == "1":  # -Djson_schema_tests=enabled
        print(f"FAIL: {e}, but the JSON Schema test is required (-Djson_schema_tests=enabled)")
        sys.exit(1)
    print(f"skipped: {e}")
    sys.exit(77)

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
with open(os.path.join(root, "schema", "spec.schema.json")) as f:
    schema = json.load(f)
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)


def errors(doc):
    return [e.message for e in v.iter_errors(doc)]


failed = 0
good = ["full.yaml", "synthetic.yaml", "sweep.yaml", "seed_compare.yaml", "seq_seed_mixer.yaml", "seq_seed_resnet.yaml"]
for name in good:
    with open(os.path.join(here, name)) as f:
        doc = yaml.safe_load(f)
    errs = errors(doc)
    if errs:
        print(f"{name}: rejected: {errs}")
        failed += 1

# the folder and npy specs of docs/data.md
good_texts = {
    "folder trees": "data: {dataset: folder, root: pets, size: [64, 64], channels: 3, batch_size: 64}\n"
                    "model: {template: cnn, channels: [16, p, 32, p]}\n",
    "folder split": "data: {dataset: folder, root: pets, size: [32, 48], channels: 1, split: {test: 0.2, seed: 3}}\n"
                    "model: {template: mlp, units: [64, 2]}\n",
    "npy nhwc": "data: {dataset: npy, root: arrays, layout: nhwc, classes: 12}\nmodel: {template: mlp, units: [12]}\n",
}
for what, text in good_texts.items():
    errs = errors(yaml.safe_load(text))
    if errs:
        print(f"{what}: rejected: {errs}")
        failed += 1

MLP = "data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\n"
bad = {
    "unknown top key": "datta: {}\n" + MLP,
    "unknown data key": "data: {dataset: mnist, batchsize: 5}\nmodel: {template: mlp, units: [10]}\n",
    "batch_size 0": "data: {dataset: mnist, batch_size: 0}\nmodel: {template: mlp, units: [10]}\n",
    "bad dataset": "data: {dataset: cifar}\nmodel: {template: mlp, units: [10]}\n",
    "cifar without root": "data: {dataset: cifar10}\nmodel: {template: mlp, units: [10]}\n",
    "root with synthetic": "data: {dataset: synthetic, root: /x}\nmodel: {template: mlp, units: [10]}\n",
    "synthetic with cifar": "data: {dataset: cifar10, root: /x, synthetic: {classes: 3}}\nmodel: {template: mlp, units: [10]}\n",
    "units on a cnn": "data: {dataset: mnist}\nmodel: {template: cnn, channels: [8], units: [10]}\n",
    "mlp without units": "data: {dataset: mnist}\nmodel: {template: mlp}\n",
    "bad layer": "data: {dataset: mnist}\nmodel: {template: sequential, layers: [{conv3d: {out: 3}}]}\n",
    "two layers in one": "data: {dataset: mnist}\nmodel: {template: sequential, layers: [{relu: {}, gelu: {}}]}\n",
    "conv without kernel": "data: {dataset: mnist}\nmodel: {template: sequential, layers: [{conv2d: {out: 3}}]}\n",
    "nested bad layer": "data: {dataset: mnist}\nmodel: {template: sequential, layers: [{residual: {layers: [{dense: {}}]}}]}\n",
    "dropout 1": "data: {dataset: mnist}\nmodel: {template: sequential, layers: [{dropout: {p: 1}}]}\n",
    "patches without size": "data: {dataset: mnist}\nmodel: {template: sequential, layers: [{patches: {}}]}\n",
    "reshape of 5 dims": "data: {dataset: mnist}\nmodel: {template: sequential, layers: [{reshape: {shape: [1, 1, 1, 1, 784]}}]}\n",
    "residual post gelu": "data: {dataset: mnist}\nmodel: {template: sequential, layers: [{residual: {layers: [{relu: {}}], post: gelu}}]}\n",
    "mixer with a setting": "data: {dataset: mnist}\nmodel: {template: sequential, layers: [{mixer: {hidden: 4}}]}\n",
    "lr 0": MLP + "train: {optimizer: {lr: 0}}\n",
    "betas on sgd": MLP + "train: {optimizer: {name: sgd, betas: [0.9, 0.99]}}\n",
    "momentum on adam": MLP + "train: {optimizer: {momentum: 0.9}}\n",
    "step without step_epochs": MLP + "train: {schedule: {name: step}}\n",
    "min_lr on step": MLP + "train: {schedule: {name: step, step_epochs: 2, min_lr: 0.1}}\n",
    "bad precision": MLP + "train: {precision: fp16}\n",
    "bad device": "device: gpu\n" + MLP,
    "no model": "data: {dataset: mnist}\n",
    "matrix not a list": MLP + "matrix: {model.hidden: 128}\n",
    "matrix bad path": MLP + "matrix: {'model..x': [1]}\n",
    "bad name": "name: 'my run'\n" + MLP,
    "folder without size": "data: {dataset: folder, root: x}\nmodel: {template: mlp, units: [3]}\n",
    "folder without root": "data: {dataset: folder, size: [8, 8]}\nmodel: {template: mlp, units: [3]}\n",
    "folder channels 2": "data: {dataset: folder, root: x, size: [8, 8], channels: 2}\nmodel: {template: mlp, units: [3]}\n",
    "folder split 1": "data: {dataset: folder, root: x, size: [8, 8], split: {test: 1}}\nmodel: {template: mlp, units: [3]}\n",
    "size on npy": "data: {dataset: npy, root: x, size: [8, 8]}\nmodel: {template: mlp, units: [3]}\n",
    "layout on folder": "data: {dataset: folder, root: x, size: [8, 8], layout: nhwc}\nmodel: {template: mlp, units: [3]}\n",
    "classes on mnist": "data: {dataset: mnist, classes: 10}\nmodel: {template: mlp, units: [10]}\n",
    "bad layout": "data: {dataset: npy, root: x, layout: chw}\nmodel: {template: mlp, units: [3]}\n",
    "slurm time": MLP + "slurm: {time: soon}\n",
    "slurm short option": MLP + "slurm: {extra: [-c4]}\n",
}
for what, text in bad.items():
    if not errors(yaml.safe_load(text)):
        print(f"accepted a spec with a mistake: {what}")
        failed += 1


def keys(node, out):
    if isinstance(node, dict):
        for k, sub in node.get("properties", {}).items():
            out.add(k)
        for sub in node.values():
            keys(sub, out)
    elif isinstance(node, list):
        for sub in node:
            keys(sub, out)
    return out


with open(os.path.join(root, "docs", "spec.md")) as f:
    doc = f.read()
for k in sorted(keys(schema, set())):
    if not re.search(r"`%s\b" % re.escape(k), doc):
        print(f"docs/spec.md does not document `{k}`")
        failed += 1

print(f"{len(good)} good fixtures, {len(bad)} bad specs, {failed} problems")
sys.exit(1 if failed else 0)
