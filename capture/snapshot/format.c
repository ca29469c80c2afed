/* Byte buffer, cursor and digest shared by the note writer and reader. */
#include "capture/snapshot/format.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

uint64_t pyspy_fnv1a(uint64_t h, const void *buf, size_t len) {
    const uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void pyspy_buf_put(pyspy_buf *b, const void *p, size_t n) {
    if (b->oom || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n)
            nc *= 2;
        uint8_t *nd = realloc(b->data, nc);
        if (!nd) {
            b->oom = true;
            return;
        }
        b->data = nd;
        b->cap = nc;
    }
    if (p)
        memcpy(b->data + b->len, p, n);
    else
        memset(b->data + b->len, 0, n);
    b->len += n;
}

void pyspy_buf_u8(pyspy_buf *b, uint8_t v) {
    pyspy_buf_put(b, &v, 1);
}

void pyspy_buf_u32(pyspy_buf *b, uint32_t v) {
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    pyspy_buf_put(b, x, 4);
}

void pyspy_buf_u64(pyspy_buf *b, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    pyspy_buf_put(b, x, 8);
}

void pyspy_buf_str(pyspy_buf *b, const char *s) {
    size_t n = s ? strlen(s) : 0;
    pyspy_buf_u32(b, (uint32_t)n);
    pyspy_buf_put(b, s, n);
}

void pyspy_buf_align(pyspy_buf *b, size_t a) {
    size_t pad = (a - b->len % a) % a;
    pyspy_buf_put(b, NULL, pad);
}

void pyspy_buf_free(pyspy_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static const uint8_t *take(pyspy_cursor *c, size_t n) {
    if (c->bad || n > c->left) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

uint8_t pyspy_cur_u8(pyspy_cursor *c) {
    const uint8_t *p = take(c, 1);
    return p ? p[0] : 0;
}

uint32_t pyspy_cur_u32(pyspy_cursor *c) {
    const uint8_t *p = take(c, 4);
    if (!p)
        return 0;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

uint64_t pyspy_cur_u64(pyspy_cursor *c) {
    uint64_t lo = pyspy_cur_u32(c);
    uint64_t hi = pyspy_cur_u32(c);
    return lo | hi << 32;
}

void pyspy_cur_bytes(pyspy_cursor *c, void *out, size_t n) {
    const uint8_t *p = take(c, n);
    if (p)
        memcpy(out, p, n);
    else
        memset(out, 0, n);
}

char *pyspy_cur_str(pyspy_cursor *c, bool empty_is_null) {
    uint32_t n = pyspy_cur_u32(c);
    const uint8_t *p = take(c, n);
    if (!p || (n == 0 && empty_is_null))
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) {
        c->bad = true;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

void pyspy_note_add(pyspy_buf *b, const char *owner, uint32_t type,
                    const void *desc, size_t desc_len) {
    Elf64_Nhdr h;
    h.n_namesz = (Elf64_Word)(strlen(owner) + 1);
    h.n_descsz = (Elf64_Word)desc_len;
    h.n_type = type;
    pyspy_buf_put(b, &h, sizeof h);
    pyspy_buf_put(b, owner, h.n_namesz);
    pyspy_buf_align(b, 4);
    pyspy_buf_put(b, desc, desc_len);
    pyspy_buf_align(b, 4);
}
