"""A strict reader of Prometheus's text exposition format 0.0.4, stricter
than the scrapers: every family has one HELP and one TYPE before its
samples, a family's samples are together, names and labels are well formed,
label values use only the three escapes, values are Go floats, no sample
twice, a newline at the end. Returns {(name, frozenset(labels)): value} and
{family: type}; raises ValueError with the line on the first problem."""
import math
import re

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*'
SAMPLE = re.compile(rf'^({NAME})(\{{(.*)\}})? (\S+)( -?\d+)?$')
TYPES = {'counter', 'gauge', 'histogram', 'summary', 'untyped'}


def _labels(text, line):
    out = {}
    i = 0
    while i < len(text):
        m = re.match(rf'({LABEL})="', text[i:])
        if not m:
            raise ValueError(f'bad label at {text[i:]!r} in: {line}')
        key = m.group(1)
        i += m.end()
        val = []
        while True:
            if i >= len(text):
                raise ValueError(f'unterminated label value in: {line}')
            c = text[i]
            if c == '\\':
                nxt = text[i + 1:i + 2]
                if nxt not in ('\\', '"', 'n'):
                    raise ValueError(f'bad escape \\{nxt} in: {line}')
                val.append('\n' if nxt == 'n' else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == '\n':
                raise ValueError(f'newline in a label value: {line}')
            else:
                val.append(c)
                i += 1
        if key in out:
            raise ValueError(f'label {key} twice in: {line}')
        out[key] = ''.join(val)
        if i < len(text):
            if text[i] != ',':
                raise ValueError(f'expected , between labels in: {line}')
            i += 1
    return out


def _value(s, line):
    if s in ('NaN', '+Inf', '-Inf', 'Inf'):
        return float(s.replace('Inf', 'inf').replace('NaN', 'nan'))
    if not re.match(r'^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$', s):
        raise ValueError(f'bad value {s!r} in: {line}')
    return float(s)


def _family_of(sample, types):
    if sample in types:
        return sample
    for suffix in ('_total', '_sum', '_count', '_bucket', '_created'):
        if sample.endswith(suffix) and sample[:-len(suffix)] in types:
            return sample[:-len(suffix)]
    return None


def parse(text):
    if not text.endswith('\n'):
        raise ValueError('the exposition does not end with a newline')
    helps, types, samples = {}, {}, {}
    done_families = set()
    current = None
    for line in text.split('\n')[:-1]:
        if line.startswith('#'):
            parts = line.split(' ', 3)
            if len(parts) >= 3 and parts[1] in ('HELP', 'TYPE'):
                name = parts[2]
                if not re.fullmatch(NAME, name):
                    raise ValueError(f'bad metric name in: {line}')
                if name in done_families:
                    raise ValueError(f'{name} declared again after its samples: {line}')
                if parts[1] == 'HELP':
                    if name in helps:
                        raise ValueError(f'second HELP for {name}')
                    if len(parts) < 4 or not parts[3].strip():
                        raise ValueError(f'empty HELP for {name}')
                    helps[name] = parts[3]
                else:
                    if name in types:
                        raise ValueError(f'second TYPE for {name}')
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ValueError(f'bad TYPE line: {line}')
                    types[name] = parts[3]
                if current and current != name:
                    done_families.add(current)
                current = name
            continue
        if not line.strip():
            raise ValueError('an empty line')
        m = SAMPLE.match(line)
        if not m:
            raise ValueError(f'bad sample line: {line}')
        fam = _family_of(m.group(1), types)
        if fam is None:
            raise ValueError(f'sample {m.group(1)} before (or without) its TYPE')
        if fam not in helps:
            raise ValueError(f'family {fam} has no HELP')
        if fam in done_families:
            raise ValueError(f'samples of {fam} are not together: {line}')
        if current != fam:
            if current:
                done_families.add(current)
            current = fam
        if types[fam] == 'counter' and not m.group(1).endswith(('_total', '_created')):
            raise ValueError(f'counter sample {m.group(1)} without _total')
        labels = _labels(m.group(3), line) if m.group(2) else {}
        key = (m.group(1), frozenset(labels.items()))
        if key in samples:
            raise ValueError(f'sample twice: {line}')
        v = _value(m.group(4), line)
        if types[fam] == 'counter' and (math.isnan(v) or v < 0):
            raise ValueError(f'a counter below zero: {line}')
        samples[key] = v
    return samples, types


def get(samples, metric, **labels):
    want = frozenset((k, str(v)) for k, v in labels.items())
    for (n, ls), v in samples.items():
        if n == metric and want <= ls:
            return v
    return None
