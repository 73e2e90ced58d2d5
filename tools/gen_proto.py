#!/usr/bin/env python3
"""gen_proto: reads src/proto/messages.def (syntax in docs/PROTOCOL.md) and writes the C codecs
<outdir>/messages.h and <outdir>/messages.c. Python 3 stdlib only; output is deterministic.

usage: gen_proto.py messages.def OUTDIR
"""
import os
import re
import sys

PRIMS = {
    # dsl type: (C type, reader call, writer call)
    'bool': ('bool', 'kr_bool(r)', 'kw_bool'),
    'int8': ('int8_t', 'kr_i8(r)', 'kw_i8'),
    'int16': ('int16_t', 'kr_i16(r)', 'kw_i16'),
    'int32': ('int32_t', 'kr_i32(r)', 'kw_i32'),
    'int64': ('int64_t', 'kr_i64(r)', 'kw_i64'),
    'uint16': ('uint16_t', 'kr_u16(r)', 'kw_u16'),
    'uint32': ('uint32_t', 'kr_u32(r)', 'kw_u32'),
    'float64': ('double', 'kr_f64(r)', 'kw_f64'),
    'uuid': ('struct kuuid', 'kr_uuid(r)', 'kw_uuid'),
    'string': ('struct kstr', None, None),
    'bytes': ('struct kbytes', None, None),
    'records': ('struct krecords', None, None),
}
INT_RANGE = {
    'int8': (-2**7, 2**7 - 1), 'int16': (-2**15, 2**15 - 1), 'int32': (-2**31, 2**31 - 1),
    'int64': (-2**63, 2**63 - 1), 'uint16': (0, 2**16 - 1), 'uint32': (0, 2**32 - 1),
}
C_KEYWORDS = set('''auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof static struct switch
typedef union unsigned void volatile while bool true false'''.split())
VMAX = 0x7fff


class DefError(Exception):
    pass


def snake(name):
    s = re.sub(r'([A-Z]+)([A-Z][a-z])', r'\1_\2', name)
    s = re.sub(r'([a-z0-9])([A-Z])', r'\1_\2', s)
    return s.lower()


def parse_versions(text, where):
    m = re.fullmatch(r'(\d+)(\+|-(\d+))?', text)
    if not m:
        raise DefError('%s: bad version range %r' % (where, text))
    lo = int(m.group(1))
    hi = VMAX if m.group(2) == '+' else int(m.group(3)) if m.group(3) else lo
    if hi < lo:
        raise DefError('%s: empty version range %r' % (where, text))
    return lo, hi


def intersect(a, b):
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return (lo, hi) if lo <= hi else None


class Field:
    def __init__(self, where, name):
        self.where = where
        self.name = name
        self.cname = snake(name)
        self.children = []       # field lines indented below (defines a struct)
        self.is_array = False
        self.base = None         # prim name or struct type name
        self.struct = None       # resolved Struct
        self.versions = None     # (lo, hi) effective
        self.nullable = None     # (lo, hi) or None
        self.tag = None
        self.default = None      # raw text or None
        self.default_value = None  # parsed default (None = zero/empty/null)


class Struct:
    def __init__(self, msg, tname, fields, where):
        self.msg = msg
        self.tname = tname
        self.cname = msg.cname if tname is None else msg.cname + '_' + snake(tname)
        self.fields = fields
        self.where = where

    def plain(self):
        return [f for f in self.fields if f.tag is None]

    def tagged(self):
        return sorted((f for f in self.fields if f.tag is not None), key=lambda f: f.tag)


class Message:
    def __init__(self, where, kind, key, name, versions, flex):
        self.where = where
        self.kind = kind         # 'request', 'response' or 'message'
        self.key = key
        self.name = name
        self.cname = snake(name) + ('' if kind == 'message' else '_' + kind)
        self.versions = versions
        self.flex = flex         # first flexible version or None
        self.served = None       # request: (min, max) ApiVersions advertises, or None
        self.top = []            # top-level Field list
        self.commons = []        # (name, [Field], where)
        self.structs = {}        # type name -> Struct
        self.root = None


TOKEN = re.compile(r'\S*"(?:[^"\\]|\\.)*"\S*|\S+')


def strip_comment(raw):
    """Drops a # comment that is not inside a "quoted" default."""
    quoted = False
    for i, ch in enumerate(raw):
        if ch == '"' and (i == 0 or raw[i - 1] != '\\'):
            quoted = not quoted
        elif ch == '#' and not quoted:
            return raw[:i].rstrip()
    return raw.rstrip()


def read_def(path):
    """Returns the list of Messages, fields parsed into trees but types not yet resolved."""
    msgs = []
    stack = []  # (indent of the owning line, children list); the owner of stack[0] is the header
    with open(path, encoding='utf-8') as fh:
        lines = fh.read().split('\n')
    for no, raw in enumerate(lines, 1):
        where = '%s:%d' % (path, no)
        line = strip_comment(raw)
        if not line.strip():
            continue
        if '\t' in line:
            raise DefError('%s: tabs are not allowed, indent with spaces' % where)
        indent = len(line) - len(line.lstrip(' '))
        toks = TOKEN.findall(line)
        if indent == 0:
            if toks[0] == 'api':
                if len(toks) < 5 or toks[3] not in ('request', 'response'):
                    raise DefError('%s: expected "api KEY Name request|response MIN-MAX '
                                   '[flexible N+] [served [MIN-MAX]]"' % where)
                key, name, kind, vers = int(toks[1]), toks[2], toks[3], toks[4]
                rest = toks[5:]
            elif toks[0] == 'message':
                if len(toks) not in (3, 5):
                    raise DefError('%s: expected "message Name MIN-MAX [flexible N+]"' % where)
                key, name, kind, vers = None, toks[1], 'message', toks[2]
                rest = toks[3:]
            elif toks[0] == 'common':
                if not msgs or len(toks) != 2:
                    raise DefError('%s: "common Name" must follow an api or message' % where)
                fields = []
                msgs[-1].commons.append((toks[1], fields, where))
                stack = [(0, fields)]
                continue
            else:
                raise DefError('%s: unknown top-level keyword %r' % (where, toks[0]))
            flex = None
            served = None
            if rest and rest[0] == 'flexible':
                if len(rest) < 2 or not rest[1].endswith('+'):
                    raise DefError('%s: expected "flexible N+"' % where)
                flex = parse_versions(rest[1], where)[0]
                rest = rest[2:]
            versions = parse_versions(vers, where)
            if rest and rest[0] == 'served' and kind == 'request':
                # The versions ApiVersions advertises: all described, or a MIN-MAX within them.
                served = parse_versions(rest[1], where) if len(rest) == 2 else versions
                if len(rest) > 2 or served[0] < versions[0] or served[1] > versions[1]:
                    raise DefError('%s: expected "served [MIN-MAX]" within %d-%d'
                                   % (where, versions[0], versions[1]))
                rest = []
            if rest:
                raise DefError('%s: unexpected %r (request lines take "flexible N+" then '
                               '"served [MIN-MAX]")' % (where, ' '.join(rest)))
            msg = Message(where, kind, key, name, versions, flex)
            msg.served = served
            msgs.append(msg)
            stack = [(0, msg.top)]
            continue
        if not stack:
            raise DefError('%s: field outside of any api/message' % where)
        while len(stack) > 1 and stack[-1][0] >= indent:
            stack.pop()
        siblings = stack[-1][1]
        if siblings and siblings[0].indent != indent:
            raise DefError('%s: indentation does not match the fields above' % where)
        if len(toks) < 2:
            raise DefError('%s: expected "Name type [attributes]"' % where)
        f = Field(where, toks[0])
        f.indent = indent
        f.type_text = toks[1]
        f.attrs = toks[2:]
        siblings.append(f)
        stack.append((indent, f.children))
    return msgs


def parse_default(f, where):
    d = f.default
    if d is None:
        return None
    base = f.base
    if f.is_array or f.struct is not None:
        if d != 'null':
            raise DefError('%s: only default=null is allowed for arrays and structs' % where)
        return None
    if base in INT_RANGE:
        try:
            v = int(d, 0)
        except ValueError:
            raise DefError('%s: bad integer default %r' % (where, d))
        lo, hi = INT_RANGE[base]
        if not lo <= v <= hi:
            raise DefError('%s: default %d out of range for %s' % (where, v, base))
        return v
    if base == 'bool':
        if d not in ('true', 'false'):
            raise DefError('%s: bool default must be true or false' % where)
        return d == 'true'
    if base == 'float64':
        return float(d)
    if base in ('string', 'bytes', 'records'):
        if d == 'null':
            return None
        if base == 'string' and len(d) >= 2 and d[0] == '"' and d[-1] == '"':
            return d[1:-1].encode('utf-8').decode('unicode_escape')
        if base == 'bytes' and d == '""':
            return ''
        raise DefError('%s: string default must be null or "quoted"' % where)
    if base == 'uuid':
        if d not in ('0', 'zero'):
            raise DefError('%s: only the zero uuid is supported as a default' % where)
        return None
    raise DefError('%s: no default allowed for %s' % (where, base))


def resolve_field(msg, f, parent_range):
    where = f.where
    t = f.type_text
    if t.startswith('[]'):
        f.is_array = True
        t = t[2:]
    nullable_all = False
    if t in ('nstring', 'nbytes'):
        if f.is_array:
            raise DefError('%s: arrays of nullable strings/bytes are not supported' % where)
        t = t[1:]
        nullable_all = True
    f.base = t
    own = None
    nullable_text = None
    for a in f.attrs:
        if re.fullmatch(r'\d+(\+|-\d+)?', a):
            own = parse_versions(a, where)
        elif a == 'null':
            nullable_all = True
        elif a.startswith('null='):
            nullable_text = a[5:]
        elif re.fullmatch(r'tag=\d+', a):
            f.tag = int(a[4:])
        elif a.startswith('default='):
            f.default = a[8:]
        else:
            raise DefError('%s: unknown attribute %r' % (where, a))
    f.versions = intersect(own, parent_range) if own else parent_range
    if f.versions is None:
        raise DefError('%s: field versions lie outside the enclosing versions' % where)
    if nullable_all:
        f.nullable = f.versions
    elif nullable_text:
        f.nullable = intersect(parse_versions(nullable_text, where), f.versions)
    if f.cname in C_KEYWORDS:
        raise DefError('%s: field name %s is a C keyword' % (where, f.cname))
    if f.tag is not None:
        if msg.flex is None or f.versions[0] < msg.flex:
            raise DefError('%s: tagged field in non-flexible versions' % where)
        if t == 'records':
            raise DefError('%s: tagged records are not supported' % where)
    if t in PRIMS:
        if f.children:
            raise DefError('%s: primitive field %s has children' % (where, f.name))
        if f.is_array and t == 'records':
            raise DefError('%s: arrays of records are not supported' % where)
        if f.nullable and t not in ('string', 'bytes', 'records') and not f.is_array:
            raise DefError('%s: %s cannot be nullable' % (where, t))
    else:
        if not re.fullmatch(r'[A-Z][A-Za-z0-9]*', t):
            raise DefError('%s: unknown type %r' % (where, t))
        if f.children:
            if t in msg.structs:
                raise DefError('%s: struct %s defined twice in %s' % (where, t, msg.name))
            msg.structs[t] = Struct(msg, t, f.children, where)
            for c in f.children:
                resolve_field(msg, c, f.versions)
        elif t not in msg.structs:
            raise DefError('%s: unknown struct %s (no fields below it and no common %s)'
                           % (where, t, t))


def resolve(msgs):
    seen_types = {}
    apis = {}
    for msg in msgs:
        for name, fields, where in msg.commons:
            if name in msg.structs:
                raise DefError('%s: common %s defined twice' % (where, name))
            msg.structs[name] = Struct(msg, name, fields, where)
            for c in fields:
                resolve_field(msg, c, msg.versions)
        for f in msg.top:
            resolve_field(msg, f, msg.versions)
        msg.root = Struct(msg, None, msg.top, msg.where)
        for s in [msg.root] + list(msg.structs.values()):
            names = set()
            for f in s.fields:
                if f.base in msg.structs and f.base not in PRIMS:
                    f.struct = msg.structs[f.base]
                f.default_value = parse_default(f, f.where)
                for n in (f.cname, 'n_' + f.cname if f.is_array else None):
                    if n is None:
                        continue
                    if n in names:
                        raise DefError('%s: duplicate C field name %s' % (f.where, n))
                    names.add(n)
            tags = [f.tag for f in s.fields if f.tag is not None]
            if len(tags) != len(set(tags)):
                raise DefError('%s: duplicate tag numbers in %s' % (s.where, s.cname))
        for s in [msg.root] + list(msg.structs.values()):
            if s.cname in seen_types:
                raise DefError('%s: C type %s also generated by %s' % (s.where, s.cname,
                                                                       seen_types[s.cname]))
            seen_types[s.cname] = s.where
        if msg.kind != 'message':
            other = apis.setdefault(msg.key, {})
            if msg.kind in other:
                raise DefError('%s: api %d %s described twice' % (msg.where, msg.key, msg.kind))
            other[msg.kind] = msg
    for key, pair in apis.items():
        if set(pair) != {'request', 'response'}:
            raise DefError('api %d needs both a request and a response' % key)
        q, s = pair['request'], pair['response']
        if q.name != s.name or q.versions != s.versions or q.flex != s.flex:
            raise DefError('%s: request and response of api %d disagree on name, versions or '
                           'flexible' % (s.where, key))
    for msg in msgs:
        used = set()
        order = []

        def visit(s):
            for f in s.fields:
                if f.struct is not None and f.struct.tname not in used:
                    used.add(f.struct.tname)
                    visit(f.struct)
            order.append(s)
        visit(msg.root)
        for name in msg.structs:
            if name not in used:
                raise DefError('%s: struct %s is never used' % (msg.structs[name].where, name))
        msg.order = order  # dependencies first, root last
    return apis


# ---------------------------------------------------------------------------------------------
# C emission

def c_version_cond(rng, scope):
    """C condition for `v` within rng, knowing v is already within scope; None = always."""
    lo, hi = rng
    parts = []
    if lo > scope[0]:
        parts.append('v >= %d' % lo)
    if hi < scope[1]:
        parts.append('v <= %d' % hi)
    if lo == hi and len(parts) == 2:
        return 'v == %d' % lo
    return ' && '.join(parts) if parts else None


def c_nullable(f):
    if f.nullable is None:
        return 'false'
    return c_version_cond(f.nullable, f.versions) or 'true'


def c_int_literal(base, v):
    lo, hi = INT_RANGE.get(base, (None, None))
    if base in ('int32', 'int64') and v == lo:
        return 'INT%s_MIN' % base[3:]
    if base == 'int64':
        return 'INT64_C(%d)' % v
    if base == 'uint32':
        return 'UINT32_C(%d)' % v
    return '%d' % v


def c_string_literal(s):
    out = '"'
    for ch in s.encode('utf-8'):
        c = chr(ch)
        if c in '"\\':
            out += '\\' + c
        elif 32 <= ch < 127:
            out += c
        else:
            out += '\\%03o' % ch
    return out + '"'


def c_field_decl(f):
    if f.struct is not None:
        t = 'struct %s' % f.struct.cname
    else:
        t = PRIMS[f.base][0]
    if f.is_array:
        return ['%s *%s;' % (t, f.cname), 'int32_t n_%s;' % f.cname]
    if f.struct is not None and f.nullable is not None:
        return ['%s *%s; /* NULL = null */' % (t, f.cname)]
    return ['%s %s;' % (t, f.cname)]


def msg_flex_expr(msg):
    if msg.flex is None or msg.flex > msg.versions[1]:
        return 'false'
    if msg.flex <= msg.versions[0]:
        return 'true'
    return 'v >= %d' % msg.flex


class Emitter:
    def __init__(self, msgs, apis):
        self.msgs = msgs
        self.apis = apis
        self.needs_is_default = set()
        for msg in msgs:
            for s in msg.order:
                for f in s.fields:
                    if f.tag is not None and f.struct is not None and not f.is_array \
                            and f.nullable is None:
                        self.mark_default(f.struct)

    def mark_default(self, s):
        if s.cname in self.needs_is_default:
            return
        self.needs_is_default.add(s.cname)
        for f in s.fields:
            if f.struct is not None and not f.is_array and f.nullable is None:
                self.mark_default(f.struct)

    # -- defaults ---------------------------------------------------------------------------
    def set_defaults(self, s):
        out = ['void %s_set_defaults(struct %s *x)' % (s.cname, s.cname), '{',
               '    memset(x, 0, sizeof(*x));']
        for f in s.fields:
            n = 'x->' + f.cname
            d = f.default_value
            if f.is_array:
                if f.default == 'null':
                    out.append('    x->n_%s = -1;' % f.cname)
            elif f.struct is not None:
                if f.nullable is None:
                    out.append('    %s_set_defaults(&%s);' % (f.struct.cname, n))
            elif f.base in INT_RANGE:
                if d:
                    out.append('    %s = %s;' % (n, c_int_literal(f.base, d)))
            elif f.base == 'bool':
                if d:
                    out.append('    %s = true;' % n)
            elif f.base == 'float64':
                if d:
                    out.append('    %s = %r;' % (n, d))
            elif f.base == 'string':
                if not (f.default == 'null'):
                    lit = d or ''
                    out.append('    %s.ptr = (char *)%s;' % (n, c_string_literal(lit)))
                    out.append('    %s.len = %d;' % (n, len(lit.encode('utf-8'))))
            elif f.base == 'bytes':
                if f.default == 'null':
                    out.append('    %s.len = -1;' % n)
            elif f.base == 'records':
                out.append('    %s.fd = -1;' % n)
                if f.nullable is not None and f.default != '""':
                    out.append('    %s.len = -1;' % n)
        out.append('}')
        return out

    def is_default_expr(self, f, x='x'):
        n = '%s->%s' % (x, f.cname)
        d = f.default_value
        if f.is_array:
            return ('%s->n_%s < 0' if f.default == 'null' else '%s->n_%s <= 0') % (x, f.cname)
        if f.struct is not None:
            if f.nullable is not None:
                return '%s == NULL' % n
            return '%s_is_default(&%s)' % (f.struct.cname, n)
        if f.base in INT_RANGE:
            return '%s == %s' % (n, c_int_literal(f.base, d or 0))
        if f.base == 'bool':
            return '%s == %s' % (n, 'true' if d else 'false')
        if f.base == 'float64':
            return '%s == %r' % (n, d or 0.0)
        if f.base == 'uuid':
            return 'proto_uuid_is_zero(%s)' % n
        if f.base == 'string':
            if f.default == 'null':
                return '%s.ptr == NULL' % n
            return 'proto_str_is(%s, %s)' % (n, c_string_literal(d or ''))
        if f.base in ('bytes', 'records'):
            if f.default == 'null' or (f.base == 'records' and f.default is None):
                return '%s.len < 0' % n
            return '%s.len == 0' % n
        raise AssertionError(f.base)

    def is_default_fn(self, s):
        out = ['static bool %s_is_default(const struct %s *x)' % (s.cname, s.cname), '{']
        exprs = [self.is_default_expr(f) for f in s.fields]
        out.append('    return %s;' % ('\n        && '.join('(%s)' % e for e in exprs)
                                        if exprs else 'true'))
        out.append('}')
        return out

    # -- decoding ---------------------------------------------------------------------------
    def dec_value(self, f, target, ind):
        """Lines reading one (non-array) value of f into target."""
        p = ' ' * ind
        if f.struct is not None:
            return [p + '%s_dec(r, v, &%s);' % (f.struct.cname, target)]
        if f.base in ('string', 'bytes', 'records'):
            nl = 'false' if f.is_array else c_nullable(f)
            fn = {'string': 'kr_str', 'bytes': 'kr_bytes', 'records': 'kr_records'}[f.base]
            return [p + '%s = %s(r, flex, %s);' % (target, fn, nl)]
        return [p + '%s = %s;' % (target, PRIMS[f.base][1])]

    def dec_field(self, f, ind):
        p = ' ' * ind
        n = 'x->' + f.cname
        if f.is_array:
            return [p + '{',
                    p + '    int32_t n = kr_array_len(r, flex, %s);' % c_nullable(f),
                    p + '    x->n_%s = n;' % f.cname,
                    p + '    if (n > 0) {',
                    p + '        %s = kr_alloc(r, (size_t)n, sizeof(*%s));' % (n, n),
                    p + '        if (%s == NULL)' % n,
                    p + '            x->n_%s = 0;' % f.cname,
                    p + '        for (int32_t i = 0; i < x->n_%s && r->err == 0; i++)'
                    % f.cname] + \
                self.dec_value(f, '%s[i]' % n, ind + 12) + [p + '    }', p + '}']
        if f.struct is not None and f.nullable is not None:
            return [p + 'if (!(%s) || kr_i8(r) >= 0) {' % c_nullable(f),
                    p + '    %s = kr_alloc(r, 1, sizeof(*%s));' % (n, n),
                    p + '    if (%s != NULL)' % n] + \
                self.dec_value(f, '*' + n, ind + 8) + [p + '}']
        return self.dec_value(f, n, ind)

    def dec_fn(self, s):
        msg = s.msg
        out = ['static void %s_dec(struct kreader *r, int16_t v, struct %s *x)'
               % (s.cname, s.cname), '{',
               '    const bool flex = %s;' % msg_flex_expr(msg),
               '    (void)flex;', '    (void)v;',
               '    %s_set_defaults(x);' % s.cname]
        for f in s.plain():
            cond = c_version_cond(f.versions, msg.versions)
            if cond:
                out.append('    if (%s) {' % cond)
                out += self.dec_field(f, 8)
                out.append('    }')
            else:
                out += self.dec_field(f, 4)
        tagged = s.tagged()
        if msg_flex_expr(msg) != 'false':
            if not tagged:
                out.append('    if (flex)')
                out.append('        kr_skip_tags(r);')
            else:
                out += ['    if (flex) {',
                        '        uint32_t ntags = kr_uvarint(r);',
                        '        for (uint32_t t = 0; t < ntags && r->err == 0; t++) {',
                        '            uint32_t tag = kr_uvarint(r);',
                        '            uint32_t size = kr_uvarint(r);',
                        '            if (r->err != 0 || size > kr_remaining(r)) {',
                        '                kr_fail(r, "tagged field size");',
                        '                break;',
                        '            }',
                        '            size_t end = r->off + size, len = r->len;',
                        '            r->len = end; /* a tagged value may not read past its size */',
                        '            switch (tag) {']
                for f in tagged:
                    out.append('            case %d:' % f.tag)
                    cond = c_version_cond(f.versions, msg.versions)
                    if cond:
                        out.append('                if (%s) {' % cond)
                        out += self.dec_field(f, 20)
                        out.append('                }')
                    else:
                        out += self.dec_field(f, 16)
                    out.append('                break;')
                out += ['            default:',
                        '                break; /* unknown tags are skipped */',
                        '            }',
                        '            r->len = len;',
                        '            if (r->err == 0)',
                        '                r->off = end;',
                        '        }',
                        '    }']
        out += ['    if (r->err != 0 && r->where == NULL)',
                '        r->where = "%s";' % s.cname, '}']
        return out

    # -- encoding ---------------------------------------------------------------------------
    def enc_value(self, f, src, w, ind, in_array):
        p = ' ' * ind
        if f.struct is not None:
            return [p + '%s_enc(%s, v, &%s);' % (f.struct.cname, w, src)]
        nl = 'false' if in_array else c_nullable(f)
        if f.base == 'string':
            return [p + 'proto_put_str(%s, flex, %s, %s);' % (w, nl, src)]
        if f.base == 'bytes':
            return [p + 'proto_put_bytes(%s, flex, %s, %s);' % (w, nl, src)]
        if f.base == 'records':
            return [p + 'proto_put_records(%s, flex, %s, &%s);' % (w, nl, src)]
        return [p + '%s(%s, %s);' % (PRIMS[f.base][2], w, src)]

    def enc_field(self, f, w, ind):
        p = ' ' * ind
        n = 'x->' + f.cname
        if f.is_array:
            return [p + '{',
                    p + '    int32_t n = proto_put_array_len(%s, flex, %s, x->n_%s);'
                    % (w, c_nullable(f), f.cname),
                    p + '    GREGOR_ASSERT(n <= 0 || %s != NULL);' % n,
                    p + '    for (int32_t i = 0; i < n; i++)'] + \
                self.enc_value(f, '%s[i]' % n, w, ind + 8, True) + [p + '}']
        if f.struct is not None and f.nullable is not None:
            return [p + 'if (%s) {' % c_nullable(f),
                    p + '    kw_i8(%s, %s != NULL ? 1 : -1);' % (w, n),
                    p + '    if (%s != NULL)' % n,
                    p + '        %s_enc(%s, v, %s);' % (f.struct.cname, w, n),
                    p + '} else if (%s != NULL) {' % n,
                    p + '    %s_enc(%s, v, %s);' % (f.struct.cname, w, n),
                    p + '} else {',
                    p + '    struct %s d;' % f.struct.cname,
                    p + '    %s_set_defaults(&d);' % f.struct.cname,
                    p + '    %s_enc(%s, v, &d);' % (f.struct.cname, w),
                    p + '}']
        return self.enc_value(f, n, w, ind, False)

    def enc_fn(self, s):
        msg = s.msg
        out = ['static void %s_enc(struct kwriter *w, int16_t v, const struct %s *x)'
               % (s.cname, s.cname), '{',
               '    const bool flex = %s;' % msg_flex_expr(msg),
               '    (void)flex;', '    (void)v;', '    (void)x;']
        for f in s.plain():
            cond = c_version_cond(f.versions, msg.versions)
            if cond:
                out.append('    if (%s) {' % cond)
                out += self.enc_field(f, 'w', 8)
                out.append('    }')
            else:
                out += self.enc_field(f, 'w', 4)
        tagged = s.tagged()
        if msg_flex_expr(msg) != 'false':
            if not tagged:
                out += ['    if (flex)', '        kw_empty_tags(w);']
            else:
                out += ['    if (flex) {', '        uint32_t ntags = 0;']
                for f in tagged:
                    cond = c_version_cond(f.versions, msg.versions)
                    e = '!(%s)' % self.is_default_expr(f)
                    out.append('        bool has%d = %s;' % (f.tag, '(%s) && %s' % (cond, e)
                                                             if cond else e))
                    out.append('        ntags += has%d;' % f.tag)
                out.append('        kw_uvarint(w, ntags);')
                for f in tagged:
                    out += ['        if (has%d) {' % f.tag,
                            '            struct kwriter tw;',
                            '            kw_init(&tw, w->max_bytes);']
                    out += self.enc_field(f, '&tw', 12)
                    out += ['            proto_put_tagged(w, %d, &tw);' % f.tag, '        }']
                out.append('    }')
        out.append('}')
        return out

    # -- error walk (refusal logging) ---------------------------------------------------------
    def has_errors(self, s):
        """Whether s or a struct below it has an ErrorCode."""
        memo = self.__dict__.setdefault('errors_memo', {})
        if s.cname not in memo:
            memo[s.cname] = False
            memo[s.cname] = any(
                (f.name == 'ErrorCode' and f.base == 'int16' and not f.is_array) or
                (f.struct is not None and self.has_errors(f.struct)) for f in s.fields)
        return memo[s.cname]

    def errs_fn(self, s):
        msg = s.msg
        out = ['static bool %s_errs(int16_t v, const struct %s *x, '
               'const struct proto_error_site *up, bool zeros, proto_error_fn fn, void *ctx)'
               % (s.cname, s.cname), '{', '    struct proto_error_site here = *up;',
               '    bool has = false; /* an ErrorCode in this version */',
               '    (void)v;', '    here.code = 0;', '    here.message.ptr = NULL;',
               '    here.message.len = -1;']

        def guarded(f, lines):
            cond = c_version_cond(f.versions, msg.versions)
            if cond is None:
                return ['    ' + x for x in lines]
            return ['    if (%s) {' % cond] + ['        ' + x for x in lines] + ['    }']
        scalar = [f for f in s.fields if not f.is_array and f.struct is None]
        names = [f for f in scalar if f.base == 'string' and
                 f.name in ('Name', 'Topic', 'TopicName', 'GroupId', 'ResourceName')]
        if names:
            out += guarded(names[0], ['here.resource = x->%s;' % names[0].cname,
                                      'here.partition = -1;'])
        for f in scalar:
            if f.base == 'int32' and f.name in ('PartitionIndex', 'Partition', 'Index'):
                out += guarded(f, ['here.partition = x->%s;' % f.cname])
            elif f.base == 'string' and f.name == 'ErrorMessage':
                out += guarded(f, ['here.message = x->%s;' % f.cname])
            elif f.base == 'int16' and f.name == 'ErrorCode':
                out += guarded(f, ['here.code = x->%s;' % f.cname, 'has = true;'])
        out += ['    if ((here.code != 0 || (zeros && has)) && fn(ctx, &here))',
                '        return true;']
        for f in s.fields:
            if f.struct is None or not self.has_errors(f.struct):
                continue
            fn = '%s_errs' % f.struct.cname
            if f.is_array:
                body = ['GREGOR_ASSERT(x->n_%s <= 0 || x->%s != NULL);' % (f.cname, f.cname),
                        'for (int32_t i = 0; i < x->n_%s; i++)' % f.cname,
                        '    if (%s(v, &x->%s[i], &here, zeros, fn, ctx))' % (fn, f.cname),
                        '        return true;']
            elif f.nullable is not None:
                body = ['if (x->%s != NULL && %s(v, x->%s, &here, zeros, fn, ctx))'
                        % (f.cname, fn, f.cname), '    return true;']
            else:
                body = ['if (%s(v, &x->%s, &here, zeros, fn, ctx))' % (fn, f.cname),
                        '    return true;']
            out += guarded(f, body)
        return out + ['    return false;', '}']

    def errors_table(self, keys):
        c = []
        for k in keys:
            m = self.apis[k]['response']
            root = m.root
            c += ['static bool %s_errors_any(int16_t v, const void *in, bool zeros, '
                  'proto_error_fn fn, void *ctx)' % m.cname, '{']
            if self.has_errors(root):
                c += ['    struct proto_error_site top = { 0, { NULL, -1 }, { NULL, -1 }, -1 };',
                      '    return %s_errs(v, in, &top, zeros, fn, ctx);' % root.cname]
            else:
                c += ['    (void)v;', '    (void)in;', '    (void)zeros;', '    (void)fn;',
                      '    (void)ctx;', '    return false;']
            c += ['}', '']
        c += ['typedef bool (*proto_errors_fn)(int16_t v, const void *in, bool zeros, '
              'proto_error_fn fn, void *ctx);',
              'static const proto_errors_fn proto_response_errs[] = {']
        c += ['    %s_errors_any,' % self.apis[k]['response'].cname for k in keys]
        if not keys:
            c.append('    NULL,')
        c += ['};', '',
              'bool proto_response_errors(int16_t key, int16_t version, const void *resp, '
              'proto_error_fn fn, void *ctx)', '{', '    int i = proto_api_index(key);',
              '    return i >= 0 && proto_response_errs[i](version, resp, false, fn, ctx);',
              '}', '',
              'bool proto_response_codes(int16_t key, int16_t version, const void *resp, '
              'proto_error_fn fn, void *ctx)', '{', '    int i = proto_api_index(key);',
              '    return i >= 0 && proto_response_errs[i](version, resp, true, fn, ctx);',
              '}', '']
        return c

    # -- whole files --------------------------------------------------------------------------
    def header(self):
        h = ['/* messages.h: GENERATED by tools/gen_proto.py from src/proto/messages.def.',
             ' * Do not edit: change the description and run make. Usage in docs/PROTOCOL.md. */',
             '#ifndef GREGOR_PROTO_MESSAGES_H', '#define GREGOR_PROTO_MESSAGES_H', '',
             '#include <stdbool.h>', '#include <stddef.h>', '#include <stdint.h>', '',
             '#include "proto/kbuf.h"', '',
             '/* One row per API: versions gregor can decode and encode, and those it serves. */',
             'struct proto_api {', '    int16_t key;', '    const char *name;',
             '    int16_t min_version, max_version, flexible_from; /* -1 = never */',
             '    int16_t served_min, served_max; /* advertised by ApiVersions; -1 = not served */',
             '};',
             'extern const struct proto_api proto_apis[];',
             'extern const int proto_apis_count;',
             '/* NULL when the key is not described. */',
             'const struct proto_api *proto_api_find(int16_t key);',
             '/* Whether version of key uses the flexible encoding (and header v2 / v1). */',
             'bool proto_is_flexible(int16_t key, int16_t version);', '',
             'enum proto_api_key {']
        for key in sorted(self.apis):
            h.append('    PROTO_API_%s = %d,' % (snake(self.apis[key]['request'].name).upper(),
                                                   key))
        h.append('    PROTO_API_NONE_ = -1 /* keeps the enum non-empty */')
        h += ['};', '',
              '/* The APIs the broker serves ("served" in messages.def): name and advertised',
              ' * versions, for the broker\'s key -> handler table (src/broker/apis.c). */']
        served = [k for k in sorted(self.apis) if self.apis[k]['request'].served]
        for key in served:
            q = self.apis[key]['request']
            up = 'PROTO_API_' + snake(q.name).upper()
            h += ['#define %s_NAME "%s"' % (up, q.name),
                  '#define %s_SERVED_MIN %d' % (up, q.served[0]),
                  '#define %s_SERVED_MAX %d' % (up, q.served[1])]
        h += ['#define PROTO_SERVED_APIS_COUNT %d' % len(served), '',
              '/* Type-erased codecs, for dispatch by key (fuzzing, generic tools). */',
              'typedef int (*proto_decode_fn)(struct kreader *r, int16_t version, void *out);',
              'typedef void (*proto_encode_fn)(struct kwriter *w, int16_t version, '
              'const void *in);',
              'struct proto_codec {', '    const char *name;',
              '    int16_t min_version, max_version, flexible_from; /* -1 = never */',
              '    size_t size; /* sizeof the decoded struct */',
              '    proto_decode_fn decode;', '    proto_encode_fn encode;', '};',
              'const struct proto_codec *proto_request_codec(int16_t key);',
              'const struct proto_codec *proto_response_codec(int16_t key);',
              '/* Standalone messages (__consumer_offsets records, consumer protocol). */',
              'extern const struct proto_codec proto_messages[];',
              'extern const int proto_messages_count;',
              '/* Allocate the right struct in r->arena and decode into it; -1 on an unknown key',
              ' * or version (r->err set) or a malformed body. */',
              'int proto_request_decode(int16_t key, int16_t version, struct kreader *r, '
              'void **out);',
              'int proto_response_decode(int16_t key, int16_t version, struct kreader *r, '
              'void **out);',
              '/* -1 on an unknown key (nothing written, w->err set). */',
              'int proto_request_encode(int16_t key, int16_t version, struct kwriter *w, '
              'const void *in);',
              'int proto_response_encode(int16_t key, int16_t version, struct kwriter *w, '
              'const void *in);', '',
              '/* An error a response carries: its code, its ErrorMessage when the version has',
              ' * one, and the resource it is about (the nearest Name, Topic, GroupId or',
              ' * ResourceName at or above it; partition -1 when there is no partition index). */',
              'struct proto_error_site {', '    int16_t code;', '    struct kstr message;',
              '    struct kstr resource;', '    int32_t partition;', '};',
              '/* Returns true to stop the walk. */',
              'typedef bool (*proto_error_fn)(void *ctx, const struct proto_error_site *site);',
              '/* Calls fn for each non-zero ErrorCode of a response of key at version, outer ones',
              ' * first, until fn returns true; false when fn never did (or key is unknown). */',
              'bool proto_response_errors(int16_t key, int16_t version, const void *resp, '
              'proto_error_fn fn, void *ctx);',
              '/* The same walk over every ErrorCode the version has, NONE (0) ones too (what',
              ' * Kafka\'s errorCounts counts, for /metrics). */',
              'bool proto_response_codes(int16_t key, int16_t version, const void *resp, '
              'proto_error_fn fn, void *ctx);', '',
              '/* The top-level ThrottleTimeMs of a response of key at version, for the server to',
              ' * set once for every API; NULL when that version has none (or key is unknown). */',
              'int32_t *proto_response_throttle(int16_t key, int16_t version, void *resp);', '']
        for msg in self.msgs:
            h.append('/* ---- %s %s v%d-%d%s */' % (
                msg.name, msg.kind if msg.kind != 'message' else '(message)',
                msg.versions[0], msg.versions[1],
                '' if msg.flex is None else ', flexible %d+' % msg.flex))
            for s in msg.order:
                h.append('struct %s {' % s.cname)
                for f in s.fields:
                    for d in c_field_decl(f):
                        h.append('    ' + d)
                if not s.fields:
                    h.append('    char unused_; /* no fields in any version */')
                h.append('};')
            for s in msg.order:
                h.append('void %s_set_defaults(struct %s *x);' % (s.cname, s.cname))
            c = msg.cname
            h.append('int %s_decode(struct kreader *r, int16_t version, struct %s *out);'
                     % (c, c))
            h.append('void %s_encode(struct kwriter *w, int16_t version, const struct %s *in);'
                     % (c, c))
            h.append('')
        h.append('#endif')
        return h

    def source(self):
        c = ['/* messages.c: GENERATED by tools/gen_proto.py from src/proto/messages.def.',
             ' * Do not edit: change the description and run make. */',
             '#include "messages.h"', '', '#include <string.h>', '',
             '#include "common/util.h"', '',
             'static const uint8_t proto_empty[1];', '',
             '/* -- helpers */',
             'static inline bool proto_uuid_is_zero(struct kuuid u)', '{',
             '    for (size_t i = 0; i < sizeof(u.b); i++)', '        if (u.b[i] != 0)',
             '            return false;', '    return true;', '}', '',
             'static inline bool proto_str_is(struct kstr s, const char *lit)', '{',
             '    if (s.ptr == NULL)', '        return lit[0] == 0;',
             '    return (size_t)s.len == strlen(lit) && memcmp(s.ptr, lit, (size_t)s.len) == 0;',
             '}', '',
             '/* Non-nullable versions never see a null on the wire: NULL goes out as "". */',
             'static void proto_put_str(struct kwriter *w, bool flex, bool nullable, '
             'struct kstr s)', '{',
             '    if (s.ptr == NULL && !nullable) {', '        kw_str(w, flex, "", 0);',
             '        return;', '    }', '    kw_str(w, flex, s.ptr, s.len);', '}', '',
             '/* len < 0 is null; a NULL ptr with len 0 is empty. */',
             'static void proto_put_bytes(struct kwriter *w, bool flex, bool nullable, '
             'struct kbytes b)', '{',
             '    if (b.len < 0) {', '        kw_bytes(w, flex, nullable ? NULL : proto_empty, '
             'nullable ? -1 : 0);', '        return;', '    }',
             '    GREGOR_ASSERT(b.len == 0 || b.ptr != NULL);',
             '    kw_bytes(w, flex, b.ptr != NULL ? b.ptr : proto_empty, b.len);', '}', '',
             'static void proto_put_records(struct kwriter *w, bool flex, bool nullable, '
             'const struct krecords *rec)', '{',
             '    if (rec->is_file) {',
             '        kw_records_file(w, flex, rec->fd, rec->file_offset, '
             '(size_t)(rec->len < 0 ? 0 : rec->len));',
             '        return;', '    }',
             '    struct kbytes b = { rec->ptr, rec->len };',
             '    proto_put_bytes(w, flex, nullable, b);', '}', '',
             'static int32_t proto_put_array_len(struct kwriter *w, bool flex, bool nullable, '
             'int32_t n)', '{', '    if (n < 0 && !nullable)', '        n = 0;',
             '    kw_array_len(w, flex, n < 0 ? -1 : n);', '    return n;', '}', '',
             '/* Writes tag, size and the value encoded in tw, then frees tw. */',
             'static void proto_put_tagged(struct kwriter *w, uint32_t tag, struct kwriter *tw)',
             '{', '    GREGOR_ASSERT(tw->nfiles == 0);',
             '    if (tw->err != 0 && w->err == 0)', '        w->err = tw->err;',
             '    kw_uvarint(w, tag);', '    kw_uvarint(w, (uint32_t)tw->len);',
             '    kw_raw(w, tw->buf, tw->len);', '    kw_free(tw);', '}', '']
        c.append('/* -- end helpers */')
        # forward declarations so struct order does not matter
        for msg in self.msgs:
            for s in msg.order:
                c.append('static void %s_dec(struct kreader *r, int16_t v, struct %s *x);'
                         % (s.cname, s.cname))
                c.append('static void %s_enc(struct kwriter *w, int16_t v, const struct %s *x);'
                         % (s.cname, s.cname))
                if s.cname in self.needs_is_default:
                    c.append('static bool %s_is_default(const struct %s *x);'
                             % (s.cname, s.cname))
        c.append('')
        for msg in self.msgs:
            c.append('/* ---- %s %s */' % (msg.name, msg.kind))
            for s in msg.order:
                c += self.set_defaults(s) + ['']
                if s.cname in self.needs_is_default:
                    c += self.is_default_fn(s) + ['']
                c += self.dec_fn(s) + [''] + self.enc_fn(s) + ['']
                if msg.kind == 'response' and self.has_errors(s):
                    c += self.errs_fn(s) + ['']
            m = msg.cname
            lo, hi = msg.versions
            c += ['int %s_decode(struct kreader *r, int16_t version, struct %s *out)' % (m, m),
                  '{', '    if (version < %d || version > %d) {' % (lo, hi),
                  '        %s_set_defaults(out);' % m,
                  '        kr_fail(r, "%s: unsupported version");' % m,
                  '        return -1;', '    }',
                  '    %s_dec(r, version, out);' % m,
                  '    return r->err == 0 ? 0 : -1;', '}', '',
                  'void %s_encode(struct kwriter *w, int16_t version, const struct %s *in)'
                  % (m, m), '{', '    if (version < %d || version > %d) {' % (lo, hi),
                  '        kw_fail(w, KBUF_ERR_INVALID);', '        return;', '    }',
                  '    %s_enc(w, version, in);' % m, '}', '',
                  'static int %s_decode_any(struct kreader *r, int16_t version, void *out)' % m,
                  '{', '    return %s_decode(r, version, out);' % m, '}', '',
                  'static void %s_encode_any(struct kwriter *w, int16_t version, const void *in)'
                  % m, '{', '    %s_encode(w, version, in);' % m, '}', '']
        c += self.tables()
        return drop_unused_helpers(c)

    def codec_row(self, msg):
        return '    { "%s", %d, %d, %d, sizeof(struct %s), %s_decode_any, %s_encode_any },' % (
            msg.cname, msg.versions[0], msg.versions[1],
            -1 if msg.flex is None else msg.flex, msg.cname, msg.cname, msg.cname)

    def tables(self):
        keys = sorted(self.apis)
        c = ['const struct proto_api proto_apis[] = {']
        for k in keys:
            q = self.apis[k]['request']
            sv = q.served or (-1, -1)
            c.append('    { %d, "%s", %d, %d, %d, %d, %d },' % (
                k, q.name, q.versions[0], q.versions[1], -1 if q.flex is None else q.flex,
                sv[0], sv[1]))
        if not keys:
            c.append('    { -1, NULL, 0, 0, -1, -1, -1 },')
        c += ['};', 'const int proto_apis_count = %d;' % len(keys), '']
        for kind in ('request', 'response'):
            c.append('static const struct proto_codec proto_%s_codecs[] = {' % kind)
            for k in keys:
                c.append(self.codec_row(self.apis[k][kind]))
            if not keys:
                c.append('    { NULL, 0, 0, -1, 0, NULL, NULL },')
            c += ['};', '']
        standalone = [m for m in self.msgs if m.kind == 'message']
        c.append('const struct proto_codec proto_messages[] = {')
        for m in standalone:
            c.append(self.codec_row(m))
        if not standalone:
            c.append('    { NULL, 0, 0, -1, 0, NULL, NULL },')
        c += ['};', 'const int proto_messages_count = %d;' % len(standalone), '',
              'static int proto_api_index(int16_t key)', '{', '    switch (key) {']
        for i, k in enumerate(keys):
            c.append('    case %d: return %d;' % (k, i))
        c += ['    default: return -1;', '    }', '}', '',
              'const struct proto_api *proto_api_find(int16_t key)', '{',
              '    int i = proto_api_index(key);', '    return i < 0 ? NULL : &proto_apis[i];',
              '}', '',
              'bool proto_is_flexible(int16_t key, int16_t version)', '{',
              '    const struct proto_api *api = proto_api_find(key);',
              '    return api != NULL && api->flexible_from >= 0 && '
              'version >= api->flexible_from;', '}', '']
        for kind in ('request', 'response'):
            c += ['const struct proto_codec *proto_%s_codec(int16_t key)' % kind, '{',
                  '    int i = proto_api_index(key);',
                  '    return i < 0 ? NULL : &proto_%s_codecs[i];' % kind, '}', '',
                  'int proto_%s_decode(int16_t key, int16_t version, struct kreader *r, '
                  'void **out)' % kind, '{',
                  '    const struct proto_codec *codec = proto_%s_codec(key);' % kind,
                  '    *out = NULL;', '    if (codec == NULL) {',
                  '        kr_fail(r, "unknown api key");', '        return -1;', '    }',
                  '    void *msg = kr_alloc(r, 1, codec->size);',
                  '    if (msg == NULL)', '        return -1;', '    *out = msg;',
                  '    return codec->decode(r, version, msg);', '}', '',
                  'int proto_%s_encode(int16_t key, int16_t version, struct kwriter *w, '
                  'const void *in)' % kind, '{',
                  '    const struct proto_codec *codec = proto_%s_codec(key);' % kind,
                  '    if (codec == NULL) {', '        kw_fail(w, KBUF_ERR_INVALID);',
                  '        return -1;', '    }', '    codec->encode(w, version, in);',
                  '    return w->err == 0 ? 0 : -1;', '}', '']
        return c + self.errors_table(keys) + self.throttle_table(keys)

    def throttle_table(self, keys):
        c = ['int32_t *proto_response_throttle(int16_t key, int16_t version, void *resp)', '{',
             '    switch (key) {']
        for k in keys:
            m = self.apis[k]['response']
            f = next((f for f in m.root.fields if f.name == 'ThrottleTimeMs'), None)
            if f is None:
                continue
            if f.base != 'int32' or f.is_array or f.tag is not None:
                raise DefError('%s: ThrottleTimeMs must be a plain int32' % f.where)
            lo, hi = f.versions
            c += ['    case %d:' % k,
                  '        return version >= %d && version <= %d ? &((struct %s *)resp)->%s : NULL;'
                  % (lo, hi, m.root.cname, f.cname)]
        c += ['    default:', '        (void)version;', '        (void)resp;',
              '        return NULL;', '    }', '}', '']
        return c


def drop_unused_helpers(lines):
    """Removes helper functions nothing calls (clang warns on unused static functions)."""
    start = lines.index('/* -- helpers */')
    end = lines.index('/* -- end helpers */')
    blocks, cur = [], []
    for line in lines[start + 1:end]:
        cur.append(line)
        if line == '}':
            blocks.append(cur)
            cur = []
    rest = '\n'.join(lines[end + 1:])
    kept = []
    for b in blocks:
        name = re.search(r'(\w+)\(', next(x for x in b if x.startswith('static'))).group(1)
        others = rest + '\n'.join('\n'.join(o) for o in blocks if o is not b)
        if re.search(r'\b%s\(' % name, others):
            kept += b
    return lines[:start] + kept + [''] + lines[end + 1:]


def write_file(path, lines):
    text = '\n'.join(lines) + '\n'
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write('usage: %s messages.def OUTDIR\n' % argv[0])
        return 2
    try:
        msgs = read_def(argv[1])
        apis = resolve(msgs)
    except DefError as e:
        sys.stderr.write('gen_proto: %s\n' % e)
        return 1
    em = Emitter(msgs, apis)
    os.makedirs(argv[2], exist_ok=True)
    write_file(os.path.join(argv[2], 'messages.h'), em.header())
    write_file(os.path.join(argv[2], 'messages.c'), em.source())
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
