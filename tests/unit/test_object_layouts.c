/* The object reader's fields of every built-in layout table: each kind
 * has what its readers need, entries fit inside their entries, flag bits
 * are single distinct bits, and a few values known independently of the
 * generator (CPython's documented object layouts, Python's name mangling)
 * hold. */
#include "tests/unit/layout_each.h"

static bool one_bit(uint64_t f) {
    return f && !(f & (f - 1));
}

/* An 8-byte field at off inside an entry of size bytes. */
static bool inside(int32_t off, int32_t size) {
    return off >= 0 && size >= 8 && off <= size - 8;
}

TEST(headers_and_builtins) {
    EACH(l) {
        /* A cell and a module keep their one field right after the
         * object header; tp_basicsize follows tp_name. */
        NEED(l, l->cell_ob_ref == l->pyobject_size);
        NEED(l, l->module_md_dict == l->pyobject_size);
        NEED(l, l->type_tp_basicsize == l->type_tp_name + 8);
        NEED(l,
             (l->builtins == PYSPY_BUILTINS_PY2) == (l->str == PYSPY_STR_PY2));
        NEED(l, (l->tpflags_int_subclass != 0) ==
                    (l->builtins == PYSPY_BUILTINS_PY2));
        const uint64_t flags[] = {
            l->tpflags_heaptype,       l->tpflags_long_subclass,
            l->tpflags_list_subclass,  l->tpflags_tuple_subclass,
            l->tpflags_bytes_subclass, l->tpflags_unicode_subclass,
            l->tpflags_dict_subclass,  l->tpflags_int_subclass,
            l->tpflags_managed_dict,   l->tpflags_inline_values};
        uint64_t seen = 0;
        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
            if (i < 7)
                NEED(l, one_bit(flags[i]));
            else if (flags[i])
                NEED(l, one_bit(flags[i]));
            NEED(l, !(seen & flags[i]));
            seen |= flags[i];
        }
        NEED(l, l->thread_name_attr && l->thread_ident_attr);
        if (l->thread_name_attr && l->thread_ident_attr) {
            /* 2.7's Thread keeps them private (name-mangled). */
            const char *name = l->major == 2 ? "_Thread__name" : "_name";
            const char *ident = l->major == 2 ? "_Thread__ident" : "_ident";
            NEED(l, strcmp(l->thread_name_attr, name) == 0);
            NEED(l, strcmp(l->thread_ident_attr, ident) == 0);
        }
    }
}

TEST(dicts_and_sets) {
    EACH(l) {
        NEED(l, inside(l->dictentry_key, l->dictentry_size));
        NEED(l, inside(l->dictentry_value, l->dictentry_size));
        NEED(l, l->dictentry_key != l->dictentry_value);
        NEED(l, l->dictentry_size == 24); /* hash, key, value */
        NEED(l, inside(l->set_entry_key, l->set_entry_size));
        NEED(l, l->set_entry_size == 16); /* key and hash */
        if (l->dict == PYSPY_DICT_PY311) {
            NEED(l, l->dictuentry_size == 16 &&
                        inside(l->dictuentry_key, l->dictuentry_size) &&
                        inside(l->dictuentry_value, l->dictuentry_size) &&
                        l->dictuentry_key != l->dictuentry_value);
            NEED(l, l->dictkeys_general >= 0 && l->dictkeys_unicode >= 0 &&
                        l->dictkeys_split >= 0);
            NEED(l, l->dictkeys_general != l->dictkeys_unicode &&
                        l->dictkeys_unicode != l->dictkeys_split &&
                        l->dictkeys_general != l->dictkeys_split);
        } else {
            NEED(l, l->dictuentry_size < 0 && l->dictkeys_split < 0);
        }
    }
}

TEST(instance_dicts) {
    EACH(l) {
        switch (l->idict) {
        case PYSPY_IDICT_DICTOFFSET:
            NEED(l, l->tpflags_managed_dict == 0);
            NEED(l, l->managed_dict_off == 0 && l->managed_values_off == 0);
            break;
        case PYSPY_IDICT_MANAGED311:
        case PYSPY_IDICT_MANAGED312:
        case PYSPY_IDICT_MANAGED313:
            NEED(l, one_bit(l->tpflags_managed_dict));
            NEED(l, l->heaptype_cached_keys > l->type_tp_basicsize);
            NEED(l, l->dict == PYSPY_DICT_PY311);
            /* a word in the pre-header before the object */
            NEED(l, l->managed_dict_off < 0 && l->managed_dict_off >= -32 &&
                        l->managed_dict_off % 8 == 0);
            if (l->idict == PYSPY_IDICT_MANAGED311)
                NEED(l, l->managed_values_off < 0 &&
                            l->managed_values_off % 8 == 0 &&
                            l->managed_values_off != l->managed_dict_off);
            else
                NEED(l, l->managed_values_off == 0);
            if (l->idict == PYSPY_IDICT_MANAGED313) {
                NEED(l, one_bit(l->tpflags_inline_values));
                NEED(l, l->dictvalues_capacity >= 0 &&
                            l->dictvalues_valid > l->dictvalues_capacity &&
                            l->dictvalues_values > l->dictvalues_valid);
            } else {
                NEED(l, l->tpflags_inline_values == 0);
                NEED(l, l->dictvalues_capacity < 0 && l->dictvalues_valid < 0);
            }
            break;
        default:
            NEED(l, !"unknown instance dict kind");
        }
    }
}

TEST(ints_and_code) {
    EACH(l) {
        /* 64-bit builds use 30-bit digits in 32-bit words. */
        NEED(l, l->long_digit_bits == 30 && l->long_digit_size == 4);
        if (l->long_lv_tag >= 0) {
            NEED(l,
                 l->long_tag_ndigits_shift > 0 && l->long_tag_sign_mask > 0 &&
                     l->long_tag_sign_mask < (1 << l->long_tag_ndigits_shift));
            NEED(l, l->long_tag_sign_zero > 0 &&
                        l->long_tag_sign_negative > 0 &&
                        l->long_tag_sign_zero != l->long_tag_sign_negative);
            NEED(l,
                 (l->long_tag_sign_zero & ~l->long_tag_sign_mask) == 0 &&
                     (l->long_tag_sign_negative & ~l->long_tag_sign_mask) == 0);
        } else {
            NEED(l, l->long_tag_ndigits_shift < 0 && l->long_tag_sign_mask < 0);
        }
        NEED(l, one_bit(l->co_varargs) && one_bit(l->co_varkeywords) &&
                    l->co_varargs != l->co_varkeywords);
        if (l->code_localsplusnames >= 0) {
            NEED(l, one_bit(l->co_fast_cell) && one_bit(l->co_fast_free) &&
                        l->co_fast_cell != l->co_fast_free);
            if (l->co_fast_hidden)
                NEED(l, one_bit(l->co_fast_hidden) &&
                            !(l->co_fast_hidden &
                              (l->co_fast_cell | l->co_fast_free)));
        } else {
            NEED(l, !l->co_fast_cell && !l->co_fast_free && !l->co_fast_hidden);
        }
        /* f_lasti counts bytes before 3.10, code units in 3.10, and
         * is gone after (instruction pointers instead). */
        switch (l->lines) {
        case PYSPY_LINES_LNOTAB:
            NEED(l, l->frame_lasti_unit == 1);
            break;
        case PYSPY_LINES_LINETABLE310:
            NEED(l, l->frame_lasti_unit == l->code_unit_size);
            break;
        default:
            NEED(l, l->frame_lasti_unit < 0 && l->frame_lasti < 0);
        }
    }
}

/* Values known apart from the generator: where CPython's notes on the
 * object pre-header put the managed dict (and 3.11's values), and 2.7's
 * setentry order. */
TEST(spot_values) {
    const pyspy_py_layout *l = pyspy_py_layout_builtin(2, 7, false);
    if (l) /* setentry {hash, key} */
        CHECK(l->set_entry_key == 8);
    l = pyspy_py_layout_builtin(3, 11, false);
    if (l) /* dict pointer, then values pointer, below the GC header */
        CHECK(l->managed_dict_off == -24 && l->managed_values_off == -32);
    l = pyspy_py_layout_builtin(3, 12, false);
    if (l)
        CHECK(l->managed_dict_off == -24 && l->set_entry_key == 0);
    l = pyspy_py_layout_builtin(3, 13, false);
    if (l)
        CHECK(l->managed_dict_off == -24 && l->dictvalues_values == 8);
    /* Free-threaded builds keep only the dict pointer before the
     * object. */
    l = pyspy_py_layout_builtin(3, 13, true);
    if (l)
        CHECK(l->managed_dict_off == -8 && l->cell_ob_ref == 32);
    l = pyspy_py_layout_builtin(3, 14, true);
    if (l)
        CHECK(l->managed_dict_off == -8);
}

TEST_MAIN(T(headers_and_builtins), T(dicts_and_sets), T(instance_dicts),
          T(ints_and_code), T(spot_values))
