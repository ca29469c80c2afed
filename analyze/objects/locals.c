/* A frame's local variables for the walker: names from the code object
 * (co_varnames/co_cellvars/co_freevars, or 3.11+'s co_localsplusnames with
 * co_localspluskinds), values from the frame's fast-locals array. Which
 * scheme applies is read from the layout (code_localsplusnames present or
 * not), never from the version number. */
#include "capture/base/array.h"
#include "analyze/objects/objects.h"
#include "analyze/objects/object_layout.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Real functions have far fewer; this only bounds hostile input. */
#define MAX_LOCALS 4096
#define NAME_MAX_BYTES 256

typedef struct {
    pyspy_local *v;
    size_t n, cap;
    /* src->damaged_reads before the frame's names and slots were read,
     * and whether those reads met damage: every local found through
     * them is then suspect, however sound its own object reads. */
    uint64_t d_start;
    bool tainted;
} local_list;

static int read_i32(pyspy_memsrc *src, uint64_t base, int32_t off, int32_t *out,
                    pyspy_error *err) {
    *out = 0;
    if (off < 0)
        return 0; /* the version has no such field: count is 0 */
    return pyspy_memsrc_read(src, base + (uint64_t)off, out, sizeof *out, err);
}

/* 3.14+ stack references keep flags in the low bits (mask 0 before). */
static uint64_t untag(const pyspy_python *py, uint64_t v) {
    return v & ~(uint64_t)py->layout.stackref_tag_mask;
}

static uint64_t deref_cell(pyspy_memsrc *src, const pyspy_python *py,
                           uint64_t v) {
    pyspy_py_type t;
    if (pyspy_py_type_of(src, py, v, &t, NULL) < 0 || t.kind != PYSPY_OBJ_CELL)
        return v;
    uint64_t ref = 0;
    if (pyspy_py_read_u64(src, v + (uint64_t)py->layout.cell_ob_ref, &ref,
                          NULL) < 0)
        return 0;
    return ref;
}

static int add_local(local_list *l, pyspy_memsrc *src, const pyspy_python *py,
                     uint64_t name_obj, uint64_t value, bool is_arg,
                     int verbosity, pyspy_error *err) {
    if (pyspy_array_reserve(&l->v, &l->cap, l->n + 1, sizeof *l->v, 16) != 0)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    pyspy_local *x = &l->v[l->n];
    memset(x, 0, sizeof *x);
    uint64_t d0 = src->damaged_reads;
    x->name = pyspy_py_str(src, py, name_obj, NAME_MAX_BYTES, NULL);
    if (!x->name)
        x->name = strdup("?");
    if (!x->name)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    x->addr = value;
    x->is_arg = is_arg;
    if (verbosity > 0)
        x->repr = pyspy_py_repr(src, py, value, verbosity);
    x->damaged = l->tainted || src->damaged_reads != d0;
    l->n++;
    return 0;
}

static int arg_count(pyspy_memsrc *src, const pyspy_python *py, uint64_t code,
                     int64_t *nargs, pyspy_error *err) {
    const pyspy_py_layout *l = &py->layout;
    int32_t argc, kwonly, flags;
    if (read_i32(src, code, l->code_argcount, &argc, err) < 0 ||
        read_i32(src, code, l->code_kwonlyargcount, &kwonly, err) < 0 ||
        read_i32(src, code, l->code_flags, &flags, err) < 0)
        return -1;
    /* co_argcount already includes the positional-only arguments. */
    *nargs = (int64_t)argc + kwonly +
             (((uint32_t)flags & l->co_varargs) ? 1 : 0) +
             (((uint32_t)flags & l->co_varkeywords) ? 1 : 0);
    if (argc < 0 || kwonly < 0 || *nargs > MAX_LOCALS)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "code at 0x%" PRIx64 ": bad argument counts",
                               code);
    return 0;
}

static int read_slots(pyspy_memsrc *src, uint64_t addr, size_t n,
                      uint64_t **out, pyspy_error *err) {
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    if (n && pyspy_memsrc_read(src, addr, *out, n * 8, err) < 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* 3.11+: one name per slot, kinds tell cells, frees and hidden slots. */
static int locals_plus(pyspy_memsrc *src, const pyspy_python *py, uint64_t code,
                       uint64_t lp, int verbosity, local_list *out,
                       pyspy_error *err) {
    const pyspy_py_layout *l = &py->layout;
    uint64_t names_obj, kinds_obj;
    if (pyspy_py_read_u64(src, code + (uint64_t)l->code_localsplusnames,
                          &names_obj, err) < 0 ||
        pyspy_py_read_u64(src, code + (uint64_t)l->code_localspluskinds,
                          &kinds_obj, err) < 0)
        return -1;
    int64_t nargs;
    uint64_t *names = NULL, *slots = NULL;
    uint8_t *kinds = NULL;
    size_t n, nk;
    int rc = -1;
    if (arg_count(src, py, code, &nargs, err) < 0 ||
        pyspy_py_seq_items(src, py, names_obj, &names, &n, MAX_LOCALS, err) <
            0 ||
        pyspy_py_bytes(src, py, kinds_obj, &kinds, &nk, MAX_LOCALS, err) < 0)
        goto out;
    if (nk < n)
        n = nk;
    if (read_slots(src, lp, n, &slots, err) < 0)
        goto out;
    out->tainted = src->damaged_reads != out->d_start;
    for (size_t i = 0; i < n; i++) {
        if (kinds[i] & l->co_fast_hidden)
            continue;
        uint64_t v = untag(py, slots[i]);
        if (v && (kinds[i] & (l->co_fast_cell | l->co_fast_free)))
            v = deref_cell(src, py, v);
        if (!v)
            continue;
        if (add_local(out, src, py, names[i], v, (int64_t)i < nargs, verbosity,
                      err) < 0)
            goto out;
    }
    rc = 0;
out:
    free(names);
    free(kinds);
    free(slots);
    return rc;
}

static bool same_name(pyspy_memsrc *src, const pyspy_python *py, uint64_t a,
                      uint64_t b) {
    if (a == b)
        return true;
    char *sa = pyspy_py_str(src, py, a, NAME_MAX_BYTES, NULL);
    char *sb = pyspy_py_str(src, py, b, NAME_MAX_BYTES, NULL);
    bool eq = sa && sb && strcmp(sa, sb) == 0;
    free(sa);
    free(sb);
    return eq;
}

/* <= 3.10: co_nlocals locals, then one slot per cellvar and freevar. */
static int locals_classic(pyspy_memsrc *src, const pyspy_python *py,
                          uint64_t code, uint64_t lp, int verbosity,
                          local_list *out, pyspy_error *err) {
    const pyspy_py_layout *l = &py->layout;
    int32_t nlocals;
    int64_t nargs;
    if (read_i32(src, code, l->code_nlocals, &nlocals, err) < 0 ||
        arg_count(src, py, code, &nargs, err) < 0)
        return -1;
    if (nlocals < 0 || nlocals > MAX_LOCALS)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "code at 0x%" PRIx64 ": bad co_nlocals", code);
    uint64_t tuples[3] = {0, 0, 0};
    int32_t offs[3] = {l->code_varnames, l->code_cellvars, l->code_freevars};
    uint64_t *names[3] = {NULL, NULL, NULL};
    size_t counts[3] = {0, 0, 0};
    uint64_t *slots = NULL;
    uint8_t *cell_used = NULL;
    int rc = -1;
    for (int k = 0; k < 3; k++) {
        if (offs[k] < 0)
            continue;
        if (pyspy_py_read_u64(src, code + (uint64_t)offs[k], &tuples[k], err) <
                0 ||
            (tuples[k] && pyspy_py_seq_items(src, py, tuples[k], &names[k],
                                             &counts[k], MAX_LOCALS, err) < 0))
            goto out;
    }
    if (counts[0] > (size_t)nlocals)
        counts[0] = (size_t)nlocals;
    size_t total = (size_t)nlocals + counts[1] + counts[2];
    if (read_slots(src, lp, total, &slots, err) < 0)
        goto out;
    out->tainted = src->damaged_reads != out->d_start;
    /* An argument captured by a closure lives in its cell (3.x clears
     * the plain slot, 2.7 keeps a stale copy): show the cell's value in
     * the argument's place, once. */
    cell_used = calloc(counts[1] ? counts[1] : 1, 1);
    if (!cell_used) {
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < counts[0]; i++) {
        uint64_t v = slots[i];
        for (size_t j = 0; (int64_t)i < nargs && j < counts[1]; j++) {
            if (cell_used[j] || !same_name(src, py, names[0][i], names[1][j]))
                continue;
            cell_used[j] = 1;
            uint64_t c = slots[(size_t)nlocals + j];
            v = c ? deref_cell(src, py, c) : 0;
            break;
        }
        if (v && add_local(out, src, py, names[0][i], v, (int64_t)i < nargs,
                           verbosity, err) < 0)
            goto out;
    }
    size_t base = (size_t)nlocals;
    for (int k = 1; k < 3; k++) {
        for (size_t i = 0; i < counts[k]; i++) {
            uint64_t v = slots[base + i];
            if (k == 1 && cell_used[i])
                continue;
            if (v)
                v = deref_cell(src, py, v);
            if (!v)
                continue;
            if (add_local(out, src, py, names[k][i], v, false, verbosity, err) <
                0)
                goto out;
        }
        base += counts[k];
    }
    rc = 0;
out:
    for (int k = 0; k < 3; k++)
        free(names[k]);
    free(slots);
    free(cell_used);
    return rc;
}

void pyspy_py_locals_free(pyspy_local *v, size_t n) {
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].repr);
    }
    free(v);
}

int pyspy_py_frame_locals(pyspy_memsrc *src, const pyspy_python *py,
                          uint64_t code, uint64_t localsplus_addr,
                          int verbosity, pyspy_local **out, size_t *n,
                          pyspy_error *err) {
    *out = NULL;
    *n = 0;
    local_list l = {.d_start = src->damaged_reads};
    int rc =
        py->layout.code_localsplusnames >= 0
            ? locals_plus(src, py, code, localsplus_addr, verbosity, &l, err)
            : locals_classic(src, py, code, localsplus_addr, verbosity, &l,
                             err);
    if (rc < 0) {
        pyspy_py_locals_free(l.v, l.n);
        return -1;
    }
    *out = l.v;
    *n = l.n;
    return 0;
}
