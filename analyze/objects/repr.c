/* Python-style reprs of target objects for locals: builtin scalars,
 * strings and containers as Python prints them, bounded in length, item
 * count and depth ("..." marks each cut), `<TypeName at 0xADDR>` for
 * everything else. */
#include "analyze/objects/format.h"
#include "analyze/objects/objects.h"
#include "analyze/objects/object_layout.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t max_total, max_items, max_str;
    int max_depth;
} limits;

/* py-spy allows 128 characters per -l, and cuts a string 5 short of that
 * to leave room for its quotes and the "..." mark. */
static limits limits_for(int verbosity) {
    if (verbosity < 1)
        verbosity = 1;
    if (verbosity > 32)
        verbosity = 32;
    size_t total = 128 * (size_t)verbosity;
    if (verbosity == 1)
        return (limits){total, 10, total - 5, 3};
    return (limits){total, 100, total - 5, 6};
}

#define MAX_DEPTH_STACK 16
#define SET_SCAN_MAX ((int64_t)1 << 16)

typedef struct {
    pyspy_memsrc *src;
    const pyspy_python *py;
    bool py2; /* 2.7's builtins and reprs */
    limits lim;
    pyspy_sbuf b;
    uint64_t stack[MAX_DEPTH_STACK];
    int depth;
} rctx;

static void repr_obj(rctx *c, uint64_t addr);

static void other(rctx *c, const char *name, uint64_t addr) {
    pyspy_sbuf_printf(&c->b, "<%s at 0x%" PRIx64 ">", name, addr);
}

static void repr_str(rctx *c, uint64_t addr, const pyspy_py_type *t) {
    uint32_t *cps;
    size_t n, total;
    if (pyspy_py_str_codepoints(c->src, c->py, addr, c->lim.max_str, &cps, &n,
                                &total, NULL) < 0) {
        other(c, t->name, addr);
        return;
    }
    pyspy_fmt_quoted(&c->b, cps, n, total > n, PYSPY_QUOTE_PYSPY);
    free(cps);
}

static void repr_bytes(rctx *c, uint64_t addr, const pyspy_py_type *t) {
    uint8_t *bytes;
    size_t len;
    int64_t size = 0;
    if (pyspy_py_bytes(c->src, c->py, addr, &bytes, &len, c->lim.max_str,
                       NULL) < 0) {
        other(c, t->name, addr);
        return;
    }
    pyspy_py_read_i64(c->src, addr + (uint64_t)c->py->layout.var_ob_size, &size,
                      NULL);
    uint32_t *cps = malloc((len ? len : 1) * sizeof *cps);
    if (cps) {
        for (size_t i = 0; i < len; i++)
            cps[i] = bytes[i];
        pyspy_fmt_quoted(&c->b, cps, len, size > (int64_t)len,
                         c->py2 ? PYSPY_QUOTE_PYSPY : PYSPY_QUOTE_BYTES3);
    }
    free(cps);
    free(bytes);
}

static void repr_int(rctx *c, uint64_t addr, const pyspy_py_type *t) {
    char *s = pyspy_py_int_text(c->src, c->py, addr, NULL);
    if (s)
        pyspy_sbuf_puts(&c->b, s);
    else
        other(c, t->name, addr);
    free(s);
}

static void repr_float(rctx *c, uint64_t addr) {
    double v;
    if (pyspy_memsrc_read(c->src, addr + (uint64_t)c->py->layout.float_fval, &v,
                          sizeof v, NULL) < 0) {
        other(c, "float", addr);
        return;
    }
    char buf[40];
    pyspy_fmt_float(v, buf, sizeof buf);
    pyspy_sbuf_puts(&c->b, buf);
}

/* numpy's scalar objects hold their value right after the object header,
 * where a float holds its double. */
static double half_to_double(uint16_t h) {
    int e = (h >> 10) & 0x1f;
    double m = h & 0x3ff;
    double v = e == 0    ? ldexp(m, -24)
               : e == 31 ? (m ? NAN : INFINITY)
                         : ldexp(m + 1024, e - 25);
    return h & 0x8000 ? -v : v;
}

static bool repr_numpy(rctx *c, uint64_t addr, const char *name) {
    static const struct {
        const char *name;
        char kind; /* i signed, u unsigned, f float, b bool, c complex */
        uint8_t size;
    } types[] = {
        {"int8", 'i', 1},
        {"int16", 'i', 2},
        {"int32", 'i', 4},
        {"int64", 'i', 8},
        {"uint8", 'u', 1},
        {"uint16", 'u', 2},
        {"uint32", 'u', 4},
        {"uint64", 'u', 8},
        {"float16", 'f', 2},
        {"float32", 'f', 4},
        {"float64", 'f', 8},
        {"bool", 'b', 1},
        {"bool_", 'b', 1},
        {"complex64", 'c', 8},
        {"complex128", 'c', 16},
        /* On Linux numpy's long long types are their own types, of
         * int64's size */
        {"longlong", 'i', 8},
        {"ulonglong", 'u', 8},
    };
    if (strncmp(name, "numpy.", 6) != 0)
        return false;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(name + 6, types[i].name) != 0)
            continue;
        uint8_t v[16];
        if (pyspy_memsrc_read(c->src, addr + (uint64_t)c->py->layout.float_fval,
                              v, types[i].size, NULL) < 0)
            return false;
        char buf[96], re[40], im[40];
        switch (types[i].kind) {
        case 'i': {
            int64_t x = types[i].size == 1   ? (int8_t)v[0]
                        : types[i].size == 2 ? *(int16_t *)(void *)v
                        : types[i].size == 4 ? *(int32_t *)(void *)v
                                             : *(int64_t *)(void *)v;
            snprintf(buf, sizeof buf, "%" PRId64, x);
            break;
        }
        case 'u': {
            uint64_t x = types[i].size == 1   ? v[0]
                         : types[i].size == 2 ? *(uint16_t *)(void *)v
                         : types[i].size == 4 ? *(uint32_t *)(void *)v
                                              : *(uint64_t *)(void *)v;
            snprintf(buf, sizeof buf, "%" PRIu64, x);
            break;
        }
        case 'f': {
            double x;
            if (types[i].size == 2) {
                uint16_t h;
                memcpy(&h, v, 2);
                x = half_to_double(h);
            } else if (types[i].size == 4) {
                float f;
                memcpy(&f, v, 4);
                x = f;
            } else {
                memcpy(&x, v, 8);
            }
            pyspy_fmt_float_bits(x, types[i].size * 8, buf, sizeof buf);
            break;
        }
        case 'b':
            snprintf(buf, sizeof buf, "%s", v[0] ? "True" : "False");
            break;
        default: {
            double r, m;
            if (types[i].size == 8) {
                float fr, fm;
                memcpy(&fr, v, 4);
                memcpy(&fm, v + 4, 4);
                r = fr;
                m = fm;
            } else {
                memcpy(&r, v, 8);
                memcpy(&m, v + 8, 8);
            }
            int bits = types[i].size * 4;
            pyspy_fmt_float_bits(r, bits, re, sizeof re);
            pyspy_fmt_float_bits(fabs(m), bits, im, sizeof im);
            snprintf(buf, sizeof buf, "(%s%s%sj)", re, signbit(m) ? "-" : "+",
                     im);
        }
        }
        pyspy_sbuf_puts(&c->b, buf);
        return true;
    }
    return false;
}

static void repr_seq(rctx *c, uint64_t addr, const pyspy_py_type *t) {
    bool tuple = t->kind == PYSPY_OBJ_TUPLE;
    const char *open = tuple ? "(" : "[", *close = tuple ? ")" : "]";
    int64_t size;
    uint64_t *items;
    size_t n;
    if (pyspy_py_read_i64(c->src, addr + (uint64_t)c->py->layout.var_ob_size,
                          &size, NULL) < 0 ||
        pyspy_py_seq_items(c->src, c->py, addr, &items, &n, c->lim.max_items,
                           NULL) < 0) {
        other(c, t->name, addr);
        return;
    }
    pyspy_sbuf_puts(&c->b, open);
    for (size_t i = 0; i < n && !c->b.truncated; i++) {
        if (i)
            pyspy_sbuf_puts(&c->b, ", ");
        repr_obj(c, items[i]);
    }
    if ((int64_t)n < size)
        pyspy_sbuf_puts(&c->b, n ? ", ..." : "...");
    else if (tuple && size == 1)
        pyspy_sbuf_puts(&c->b, ",");
    pyspy_sbuf_puts(&c->b, close);
    free(items);
}

typedef struct {
    rctx *c;
    size_t shown;
} dict_walk;

static int dict_item(void *ctx, uint64_t key, uint64_t value) {
    dict_walk *w = ctx;
    if (w->shown)
        pyspy_sbuf_puts(&w->c->b, ", ");
    repr_obj(w->c, key);
    pyspy_sbuf_puts(&w->c->b, ": ");
    repr_obj(w->c, value);
    w->shown++;
    return w->c->b.truncated;
}

static void repr_dict(rctx *c, uint64_t addr) {
    uint64_t used;
    if (pyspy_py_dict_len(c->src, c->py, addr, &used, NULL) < 0) {
        other(c, "dict", addr);
        return;
    }
    pyspy_sbuf_puts(&c->b, "{");
    dict_walk w = {c, 0};
    pyspy_py_dict_each(c->src, c->py, addr, c->lim.max_items, dict_item, &w,
                       NULL);
    if (w.shown < used)
        pyspy_sbuf_puts(&c->b, w.shown ? ", ..." : "...");
    pyspy_sbuf_puts(&c->b, "}");
}

/* A set's deleted slots hold a dummy key object. */
static bool set_dummy(rctx *c, uint64_t key) {
    pyspy_py_type t;
    if (pyspy_py_type_of(c->src, c->py, key, &t, NULL) < 0)
        return true;
    if (strncmp(t.name, "<dummy", 6) == 0)
        return true;
    return c->py2 && t.kind == PYSPY_OBJ_BYTES &&
           pyspy_py_str_equals(c->src, c->py, key, "<dummy key>");
}

static void repr_set(rctx *c, uint64_t addr, const pyspy_py_type *t) {
    const pyspy_py_layout *l = &c->py->layout;
    int64_t used, mask;
    uint64_t table;
    if (pyspy_py_read_i64(c->src, addr + (uint64_t)l->set_used, &used, NULL) <
            0 ||
        pyspy_py_read_i64(c->src, addr + (uint64_t)l->set_mask, &mask, NULL) <
            0 ||
        pyspy_py_read_u64(c->src, addr + (uint64_t)l->set_table, &table, NULL) <
            0 ||
        mask < 0 || mask >= (1 << 24) || used < 0 || used > mask + 1) {
        other(c, t->name, addr);
        return;
    }
    bool frozen = t->kind == PYSPY_OBJ_FROZENSET;
    if (c->py2) {
        pyspy_sbuf_puts(&c->b, frozen ? "frozenset([" : "set([");
    } else if (used == 0) {
        pyspy_sbuf_puts(&c->b, frozen ? "frozenset()" : "set()");
        return;
    } else {
        pyspy_sbuf_puts(&c->b, frozen ? "frozenset({" : "{");
    }
    size_t shown = 0;
    size_t esz = (size_t)l->set_entry_size;
    /* A table left huge by deletions is not scanned to the end. */
    int64_t scan = mask < SET_SCAN_MAX ? mask : SET_SCAN_MAX;
    for (int64_t i = 0; i <= scan && shown < c->lim.max_items &&
                        (int64_t)shown < used && !c->b.truncated;
         i++) {
        uint64_t key;
        if (pyspy_py_read_u64(
                c->src, table + (uint64_t)i * esz + (uint64_t)l->set_entry_key,
                &key, NULL) < 0)
            break;
        if (!key || set_dummy(c, key))
            continue;
        if (shown)
            pyspy_sbuf_puts(&c->b, ", ");
        repr_obj(c, key);
        shown++;
    }
    if ((int64_t)shown < used)
        pyspy_sbuf_puts(&c->b, shown ? ", ..." : "...");
    if (c->py2)
        pyspy_sbuf_puts(&c->b, "])");
    else
        pyspy_sbuf_puts(&c->b, frozen ? "})" : "}");
}

static bool is_container(pyspy_obj_kind k) {
    return k == PYSPY_OBJ_LIST || k == PYSPY_OBJ_TUPLE || k == PYSPY_OBJ_DICT ||
           k == PYSPY_OBJ_SET || k == PYSPY_OBJ_FROZENSET;
}

/* Past the depth bound (or on a cycle) a container is shown as its
 * brackets around "...", as Python shows a recursive list. */
static void container_elided(rctx *c, const pyspy_py_type *t) {
    switch (t->kind) {
    case PYSPY_OBJ_LIST:
        pyspy_sbuf_puts(&c->b, "[...]");
        break;
    case PYSPY_OBJ_TUPLE:
        pyspy_sbuf_puts(&c->b, "(...)");
        break;
    case PYSPY_OBJ_SET:
        pyspy_sbuf_puts(&c->b, c->py2 ? "set([...])" : "{...}");
        break;
    case PYSPY_OBJ_FROZENSET:
        pyspy_sbuf_puts(&c->b,
                        c->py2 ? "frozenset([...])" : "frozenset({...})");
        break;
    default:
        pyspy_sbuf_puts(&c->b, "{...}");
    }
}

static void repr_obj(rctx *c, uint64_t addr) {
    if (c->b.truncated)
        return;
    pyspy_py_type t;
    if (pyspy_py_type_of(c->src, c->py, addr, &t, NULL) < 0) {
        other(c, "unreadable", addr);
        return;
    }
    if (is_container(t.kind)) {
        bool cycle = false;
        for (int i = 0; i < c->depth; i++)
            cycle |= c->stack[i] == addr;
        if (cycle || c->depth >= c->lim.max_depth ||
            c->depth >= MAX_DEPTH_STACK) {
            container_elided(c, &t);
            return;
        }
        c->stack[c->depth++] = addr;
    }
    switch (t.kind) {
    case PYSPY_OBJ_NONE:
        pyspy_sbuf_puts(&c->b, "None");
        break;
    case PYSPY_OBJ_BOOL:
    case PYSPY_OBJ_INT:
    case PYSPY_OBJ_PY2INT:
        repr_int(c, addr, &t);
        break;
    case PYSPY_OBJ_FLOAT:
        repr_float(c, addr);
        break;
    case PYSPY_OBJ_STR:
        repr_str(c, addr, &t);
        break;
    case PYSPY_OBJ_BYTES:
        repr_bytes(c, addr, &t);
        break;
    case PYSPY_OBJ_LIST:
    case PYSPY_OBJ_TUPLE:
        repr_seq(c, addr, &t);
        break;
    case PYSPY_OBJ_DICT:
        repr_dict(c, addr);
        break;
    case PYSPY_OBJ_SET:
    case PYSPY_OBJ_FROZENSET:
        repr_set(c, addr, &t);
        break;
    default:
        if (!repr_numpy(c, addr, t.name))
            other(c, t.name, addr);
    }
    if (is_container(t.kind))
        c->depth--;
}

char *pyspy_py_repr(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                    int verbosity) {
    rctx c = {.src = src,
              .py = py,
              .py2 = py->layout.builtins == PYSPY_BUILTINS_PY2,
              .lim = limits_for(verbosity)};
    pyspy_sbuf_init(&c.b, c.lim.max_total);
    pyspy_py_type t;
    if (pyspy_py_type_of(src, py, addr, &t, NULL) < 0)
        return NULL;
    repr_obj(&c, addr);
    if (c.b.truncated) {
        /* The cut fell between characters: mark it. */
        c.b.truncated = false;
        c.b.limit = c.b.chars + 3;
        pyspy_sbuf_puts(&c.b, "...");
    }
    return pyspy_sbuf_take(&c.b);
}
