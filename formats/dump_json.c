/* py-spy's `dump --json`: the traces as serde_json::to_string_pretty
 * writes them (two-space indent, "key": value, [] for empty lists, UTF-8
 * kept, control characters escaped). The document is built as a cJSON
 * tree; integers travel as raw text so 64-bit values stay exact. */
#include "formats/dump_formats.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static cJSON *u64_raw(uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateRaw(buf);
}

static cJSON *i64_raw(int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return cJSON_CreateRaw(buf);
}

static cJSON *str_or_null(const char *s) {
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

/* cJSON_Add*ToObject return NULL on failure; one flag collects them. */
static void add(cJSON *obj, const char *key, cJSON *val, bool *ok) {
    if (!val) {
        *ok = false;
        return;
    }
    if (!cJSON_AddItemToObject(obj, key, val)) {
        cJSON_Delete(val);
        *ok = false;
    }
}

static void append(cJSON *arr, cJSON *val, bool *ok) {
    if (!val) {
        *ok = false;
        return;
    }
    if (!cJSON_AddItemToArray(arr, val)) {
        cJSON_Delete(val);
        *ok = false;
    }
}

/* py-spy's two entry flags. Its is_entry is the frame's own flag (3.11's
 * _PyInterpreterFrame.is_entry, true before 3.11 and on native frames);
 * is_shim_entry marks the frame a shim or entry frame lies below (3.12+),
 * the outermost Python frame and native frames. The walker marks a
 * shim-entered frame is_entry too, for the native merge, and says so by
 * keeping where that entry frame is (entry_frame_addr): the two are told
 * apart by it. */
static void entry_flags(const pyspy_frame *f, bool outermost, bool *entry,
                        bool *shim) {
    if (f->is_native) {
        *entry = *shim = true;
        return;
    }
    *entry = f->is_entry && !f->entry_frame_addr;
    *shim = f->entry_frame_addr != 0 || outermost;
}

static cJSON *frame_json(const pyspy_frame *f, bool interp, bool outermost,
                         bool *ok) {
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        *ok = false;
        return NULL;
    }
    add(o, "name", cJSON_CreateString(f->name ? f->name : ""), ok);
    add(o, "filename", cJSON_CreateString(f->filename ? f->filename : ""), ok);
    add(o, "module", str_or_null(f->module), ok);
    add(o, "short_filename", str_or_null(f->short_filename), ok);
    add(o, "line", i64_raw(f->line), ok);
    if (f->locals) {
        cJSON *locals = cJSON_CreateArray();
        for (size_t i = 0; locals && i < f->nlocals; i++) {
            const pyspy_local *l = &f->locals[i];
            cJSON *lo = cJSON_CreateObject();
            if (lo) {
                add(lo, "name", cJSON_CreateString(l->name ? l->name : ""), ok);
                add(lo, "addr", u64_raw(l->addr), ok);
                add(lo, "arg", cJSON_CreateBool(l->is_arg), ok);
                /* py-spy's placeholder for a value it could not read */
                add(lo, "repr", cJSON_CreateString(l->repr ? l->repr : "?"),
                    ok);
                if (l->damaged)
                    add(lo, "damaged", cJSON_CreateTrue(), ok);
            }
            append(locals, lo, ok);
        }
        add(o, "locals", locals, ok);
    } else {
        add(o, "locals", cJSON_CreateNull(), ok);
    }
    bool entry, shim;
    entry_flags(f, outermost, &entry, &shim);
    add(o, "is_entry", cJSON_CreateBool(entry), ok);
    add(o, "is_shim_entry", cJSON_CreateBool(shim), ok);
    /* Not in py-spy's shape: only a thread that runs a sub-interpreter
     * says which interpreter each of its Python frames is of (absent: 0,
     * the main one; native frames belong to none). */
    if (interp && !f->is_native)
        add(o, "interpreter_id", i64_raw(f->interpreter_id), ok);
    /* Likewise only a frame read from bytes that failed their checks
     * (--allow-damaged). */
    if (f->damaged)
        add(o, "damaged", cJSON_CreateTrue(), ok);
    return o;
}

static cJSON *process_info_json(const pyspy_traces *t,
                                const pyspy_dump_header *h, bool *ok) {
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        *ok = false;
        return NULL;
    }
    add(o, "pid", i64_raw(t->pid), ok);
    add(o, "command_line",
        cJSON_CreateString(t->command_line ? t->command_line : ""), ok);
    if (h && h->parent_pid > 0) {
        cJSON *p = cJSON_CreateObject();
        if (p) {
            add(p, "pid", i64_raw(h->parent_pid), ok);
            add(p, "command_line",
                cJSON_CreateString(h->parent_cmdline ? h->parent_cmdline : ""),
                ok);
            add(p, "parent", cJSON_CreateNull(), ok);
        }
        add(o, "parent", p, ok);
    } else {
        add(o, "parent", cJSON_CreateNull(), ok);
    }
    /* Not in py-spy's shape: only while a garbage collection runs. */
    if (t->gc_collecting)
        add(o, "gc_collecting", cJSON_CreateTrue(), ok);
    return o;
}

static cJSON *trace_json(const pyspy_traces *t, const pyspy_trace *tr,
                         const pyspy_dump_header *h, bool *ok) {
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        *ok = false;
        return NULL;
    }
    add(o, "pid", i64_raw(tr->pid), ok);
    add(o, "thread_id", u64_raw(tr->thread_id), ok);
    add(o, "thread_name", str_or_null(tr->thread_name), ok);
    add(o, "os_thread_id",
        tr->os_thread_id ? u64_raw(tr->os_thread_id) : cJSON_CreateNull(), ok);
    add(o, "active", cJSON_CreateBool(tr->active), ok);
    add(o, "owns_gil", cJSON_CreateBool(tr->owns_gil), ok);
    cJSON *frames = cJSON_CreateArray();
    bool interp = pyspy_trace_has_subinterpreter(tr);
    size_t outermost = tr->nframes;
    for (size_t i = 0; i < tr->nframes; i++)
        if (!tr->frames[i].is_native)
            outermost = i;
    for (size_t i = 0; frames && i < tr->nframes; i++)
        append(frames, frame_json(&tr->frames[i], interp, i == outermost, ok),
               ok);
    add(o, "frames", frames, ok);
    add(o, "process_info", process_info_json(t, h, ok), ok);
    /* Not in py-spy's shape: only a crashed thread carries it. */
    if (tr->crashed)
        add(o, "crashed", cJSON_CreateTrue(), ok);
    /* Likewise only a stack that could not be read whole. */
    if (tr->incomplete)
        add(o, "incomplete", cJSON_CreateTrue(), ok);
    /* And only a thread of a process in its own PID namespace: its id
     * there (os_thread_id stays the host's, as py-spy's field means). */
    if (tr->ns_thread_id)
        add(o, "ns_thread_id", u64_raw(tr->ns_thread_id), ok);
    /* And only the thread running a garbage collection. */
    if (tr->gc_collecting)
        add(o, "gc_collecting", cJSON_CreateTrue(), ok);
    if (tr->damaged)
        add(o, "damaged", cJSON_CreateTrue(), ok);
    return o;
}

static void put_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '\b':
            fputs("\\b", out);
            break;
        case '\f':
            fputs("\\f", out);
            break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void indent(FILE *out, int depth) {
    for (int i = 0; i < depth; i++)
        fputs("  ", out);
}

static void put_value(FILE *out, const cJSON *v, int depth) {
    if (cJSON_IsRaw(v)) {
        fputs(v->valuestring, out);
    } else if (cJSON_IsString(v)) {
        put_string(out, v->valuestring);
    } else if (cJSON_IsTrue(v)) {
        fputs("true", out);
    } else if (cJSON_IsFalse(v)) {
        fputs("false", out);
    } else if (cJSON_IsNumber(v)) {
        fprintf(out, "%.17g", v->valuedouble);
    } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        bool obj = cJSON_IsObject(v);
        const cJSON *c = v->child;
        if (!c) {
            fputs(obj ? "{}" : "[]", out);
            return;
        }
        fputs(obj ? "{\n" : "[\n", out);
        for (; c; c = c->next) {
            indent(out, depth + 1);
            if (obj) {
                put_string(out, c->string);
                fputs(": ", out);
            }
            put_value(out, c, depth + 1);
            fputs(c->next ? ",\n" : "\n", out);
        }
        indent(out, depth);
        fputc(obj ? '}' : ']', out);
    } else {
        fputs("null", out);
    }
}

int pyspy_dump_json(FILE *out, const pyspy_traces *t,
                    const pyspy_dump_header *h, pyspy_json_array *arr) {
    size_t *order = pyspy_dump_order(t, false);
    bool ok = order != NULL;
    for (size_t k = 0; ok && k < t->ntraces; k++) {
        cJSON *tr = trace_json(t, &t->traces[order[k]], h, &ok);
        if (tr && ok) {
            fputs(arr->n++ ? ",\n" : "[\n", out);
            indent(out, 1);
            put_value(out, tr, 1);
        }
        cJSON_Delete(tr);
    }
    free(order);
    return ok && !ferror(out) ? 0 : -1;
}

int pyspy_dump_json_end(FILE *out, const pyspy_json_array *arr) {
    fputs(arr->n ? "\n]\n" : "[]\n", out);
    return ferror(out) ? -1 : 0;
}
