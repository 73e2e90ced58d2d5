#!/usr/bin/env python3
"""check_layers: the include graph of src/ as docs/DESIGN.md draws it, checked.

Reads every `#include "dir/file.h"` line of src/**/*.c and src/**/*.h and fails (exit 1, one line
per offence) when
  - a file of a layer includes a header of a layer it may not reach (LAYERS below), or
  - headers include each other in a circle (a strongly connected component of the header graph).
A directory that LAYERS does not name may include anything, and no named layer may include it
(their lists are explicit): a new layer gets a line here when it is added.
Python 3 stdlib only; run by `make check-layers` (part of `make unit`, so of `make test`).

usage: check_layers.py [SRC_DIR]
"""
import os
import re
import sys

# layer -> the layers its files may include (besides its own). None = anything.
LAYERS = {
    'common': set(),
    'proto': {'common'},
    'log': {'common', 'proto'},
    # a partition replica: its log, producer state, epochs and watermarks
    'partition': {'common', 'proto', 'log'},
    'group': {'common', 'proto'},
    # the transaction coordinator: a state machine like group/, its I/O through txn_env
    'txn': {'common', 'proto'},
    # the outbound client (net/client.c) encodes and decodes with the generated codecs
    'net': {'common', 'proto'},
    # membership and controller on ZooKeeper: its completions come through the loop (net/loop.h);
    # it knows no handler, no topic and no log (the broker asks it, it never calls the broker)
    'cluster': {'common', 'net'},
    'broker': None,
    'cli': None,
}

PLOG_CALLERS = {'log', 'partition'}
PLOG_CALL = re.compile(r'\b(plog_[a-z_]+)\s*\(')
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(rel):
    """'group/store.c' -> 'group'; 'main.c' -> '' (the top: may include anything)."""
    parts = rel.split('/')
    return parts[0] if len(parts) > 1 else ''


def read_includes(src, rel):
    out = []
    with open(os.path.join(src, rel), encoding='utf-8', errors='replace') as f:
        for lineno, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                out.append((lineno, m.group(1)))
    return out


def resolve(rel, target):
    """The include as a path under src/: "dir/x.h" as is, "x.h" next to the includer."""
    if '/' in target:
        return os.path.normpath(target)
    return os.path.normpath(os.path.join(os.path.dirname(rel), target))


def header_cycles(graph):
    """Tarjan's strongly connected components of graph (node -> set of nodes) that are circles:
    more than one node, or one node including itself. Iterative (no recursion limit)."""
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                scc = []
                while True:
                    n = stack.pop()
                    on_stack.discard(n)
                    scc.append(n)
                    if n == node:
                        break
                if len(scc) > 1 or node in graph.get(node, ()):
                    sccs.append(sorted(scc))
    return sccs


def main(argv):
    src = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'src')
    src = os.path.normpath(src)
    files = []
    for dirpath, _, names in os.walk(src):
        for name in names:
            if name.endswith(('.c', '.h')):
                files.append(os.path.relpath(os.path.join(dirpath, name), src))
    files.sort()

    errors = []
    graph = {}
    for rel in files:
        layer = layer_of(rel)
        allowed = LAYERS.get(layer) if layer else None
        for lineno, target in read_includes(src, rel):
            dest = resolve(rel, target)
            to_layer = layer_of(dest)
            if allowed is not None and to_layer != layer and to_layer not in allowed:
                may = ', '.join(sorted(allowed)) or 'nothing'
                errors.append('%s:%d: %s/ may not include %s/ ("%s"); %s/ may include: %s'
                              % (os.path.join(src, rel), lineno, layer, to_layer or '.',
                                 target, layer, may))
            if rel.endswith('.h'):
                graph.setdefault(rel, set()).add(dest)

    # Only a partition replica touches its log: no plog_*() call outside log/ and partition/.
    for rel in files:
        if layer_of(rel) in PLOG_CALLERS:
            continue
        with open(os.path.join(src, rel), encoding='utf-8', errors='replace') as f:
            for lineno, line in enumerate(f, 1):
                code = line.split('//')[0]
                if code.lstrip().startswith(('*', '/*')):
                    continue
                m = PLOG_CALL.search(code)
                if m:
                    errors.append('%s:%d: %s() called outside log/ and partition/ (use the '
                                  'partition API)' % (os.path.join(src, rel), lineno, m.group(1)))

    for scc in header_cycles(graph):
        errors.append('%s: include cycle among headers: %s'
                      % (src, ' <-> '.join(scc)))

    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print('check_layers: %d offence(s); the allowed arrows are in tools/check_layers.py'
              % len(errors), file=sys.stderr)
        return 1
    print('check_layers: %d files, include graph follows the layers, no header cycle, '
          'plog_* called only in log/ and partition/'
          % len(files))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
