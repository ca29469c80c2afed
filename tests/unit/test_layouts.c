/* Sanity of every built-in layout table: each kind has the fields its
 * readers need, and every supported family is present exactly once. */
#include "tests/unit/layout_each.h"

TEST(families_present_once) {
    static const struct {
        int major, minor;
        bool ft;
    } want[] = {{2, 7, false},  {3, 6, false},  {3, 7, false},  {3, 8, false},
                {3, 9, false},  {3, 10, false}, {3, 11, false}, {3, 12, false},
                {3, 13, false}, {3, 13, true},  {3, 14, false}, {3, 14, true},
                {3, 15, false}, {3, 15, true}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const pyspy_py_layout *l =
            pyspy_py_layout_builtin(want[i].major, want[i].minor, want[i].ft);
        if (!l)
            fprintf(stderr, "  missing %d.%d%s\n", want[i].major, want[i].minor,
                    want[i].ft ? "t" : "");
        CHECK(l != NULL);
        if (l) {
            CHECK(l->major == want[i].major && l->minor == want[i].minor);
            CHECK(l->free_threaded == want[i].ft);
        }
    }
    for (size_t i = 0; i < pyspy_py_layout_count(); i++)
        for (size_t j = i + 1; j < pyspy_py_layout_count(); j++) {
            const pyspy_py_layout *a = pyspy_py_layout_at(i);
            const pyspy_py_layout *b = pyspy_py_layout_at(j);
            CHECK(!(a->major == b->major && a->minor == b->minor &&
                    a->free_threaded == b->free_threaded));
        }
    CHECK(pyspy_py_layout_at(pyspy_py_layout_count()) == NULL);
}

TEST(unsupported_families_absent) {
    CHECK(pyspy_py_layout_builtin(3, 5, false) == NULL);
    CHECK(pyspy_py_layout_builtin(3, 16, false) == NULL);
    CHECK(pyspy_py_layout_builtin(2, 6, false) == NULL);
    CHECK(pyspy_py_layout_builtin(3, 12, true) == NULL);
}

TEST(objects_and_interpreter) {
    EACH(l) {
        NEED(l, l->pyobject_size == (l->free_threaded ? 32 : 16));
        NEED(l, l->ob_type >= 0 && l->ob_type < l->pyobject_size);
        NEED(l, l->var_ob_size == l->pyobject_size);
        NEED(l, l->type_tp_name > 0 && l->type_tp_flags > 0 &&
                    l->type_tp_dictoffset > 0);
        NEED(l, l->tuple_item > 0 && l->list_item > 0 && l->float_fval > 0);
        NEED(l, l->long_digits > 0 && l->bytes_sval > 0);
        NEED(l, l->interp_tstate_head >= 0 && l->interp_next >= 0);
        NEED(l, l->interp_tstate_head != l->interp_next);
        NEED(l, l->interp_modules > 0 && l->interp_sysdict > 0);
        NEED(l, l->tstate_next >= 0 && l->tstate_interp >= 0 &&
                    l->tstate_thread_id > 0);
        NEED(l, l->tstate_size > l->tstate_thread_id);
        NEED(l, l->code_filename > 0 && l->code_name > 0 &&
                    l->code_firstlineno > 0 && l->code_linetable > 0);
        NEED(l,
             l->code_argcount > 0 && l->code_nlocals > 0 && l->code_flags > 0);
        NEED(l, l->code_unit_size == (l->major == 2 ? 1 : 2));
        NEED(l, l->set_table > 0 && l->set_mask > 0 && l->set_used > 0);
        NEED(l, l->dict_ma_used > 0 && l->dict_ma_keys > 0);
        /* 3.7+ reach the interpreters through _PyRuntime. */
        if (l->major == 3 && l->minor >= 7)
            NEED(l, l->runtime_interpreters_head >= 0);
        if (l->major == 3 && l->minor >= 13)
            NEED(l, l->runtime_debug_offsets == 0);
    }
}

TEST(thread_and_frame_kinds) {
    EACH(l) {
        switch (l->threads) {
        case PYSPY_THREADS_FRAME:
            NEED(l, l->tstate_frame >= 0);
            NEED(l, l->frame_back > 0 && l->frame_code > 0 &&
                        l->frame_lasti > 0 && l->frame_lineno > 0 &&
                        l->frame_localsplus > 0);
            NEED(l, l->code_varnames > 0 && l->code_cellvars > 0 &&
                        l->code_freevars > 0);
            break;
        case PYSPY_THREADS_CFRAME:
        case PYSPY_THREADS_CURRENT_FRAME:
            if (l->threads == PYSPY_THREADS_CFRAME)
                NEED(l, l->tstate_cframe >= 0 && l->cframe_current_frame >= 0);
            else
                NEED(l, l->tstate_frame >= 0);
            NEED(l, l->iframe_previous >= 0 && l->iframe_code >= 0 &&
                        l->iframe_instr_ptr >= 0 && l->iframe_owner > 0 &&
                        l->iframe_localsplus > 0);
            NEED(l, l->iframe_localsplus == l->frame_size);
            NEED(l, l->code_localsplusnames > 0 &&
                        l->code_localspluskinds > 0 &&
                        l->code_code_adaptive > 0 && l->code_qualname > 0 &&
                        l->code_nlocalsplus > 0);
            NEED(l, l->tstate_native_thread_id > 0);
            /* 3.11 marks entry frames with a flag, later ones with a shim
             * frame owned by the C stack (3.12-3.14) or the interpreter
             * (3.15). */
            NEED(l, (l->iframe_is_entry > 0) !=
                        (l->owner_cstack >= 0 || l->owner_interpreter >= 0));
            if (l->owner_cstack >= 0 && l->owner_interpreter >= 0)
                NEED(l, l->owner_cstack != l->owner_interpreter);
            NEED(l, l->tagged_stackrefs == (l->stackref_tag_mask != 0));
            NEED(l, l->tagged_stackrefs == (l->iframe_stacktop < 0));
            break;
        default:
            NEED(l, !"unknown threads kind");
        }
    }
}

TEST(gil_kinds) {
    EACH(l) {
        switch (l->gil) {
        case PYSPY_GIL_TSTATE_CURRENT:
            NEED(l, l->runtime_interpreters_head < 0);
            break;
        case PYSPY_GIL_RUNTIME:
            NEED(l, l->runtime_gil > 0 && l->runtime_tstate_current > 0);
            NEED(l, l->gil_locked >= 0 && l->gil_last_holder >= 0);
            break;
        case PYSPY_GIL_INTERP_PTR:
            NEED(l, l->interp_gil_ptr >= 0);
            NEED(l, l->gil_locked >= 0 && l->gil_last_holder >= 0);
            break;
        default:
            NEED(l, !"unknown gil kind");
        }
    }
}

TEST(str_and_dict_kinds) {
    EACH(l) {
        if (l->str == PYSPY_STR_PY3) {
            NEED(l, l->unicode_length > 0 && l->unicode_state > 0);
            NEED(l, l->unicode_ascii_data > l->unicode_state);
            NEED(l, l->unicode_compact_data > l->unicode_ascii_data);
            NEED(l, l->unicode_nonstate_data > 0);
            NEED(l, l->unicode_state_kind_shift >= 0 &&
                        l->unicode_state_kind_shift < 29);
            NEED(l,
                 l->unicode_state_compact_shift > l->unicode_state_kind_shift);
            NEED(l, l->unicode_state_ascii_shift > l->unicode_state_kind_shift);
        } else {
            NEED(l, l->py2_str_sval > 0 && l->py2_unicode_length > 0 &&
                        l->py2_unicode_str > 0);
            NEED(l, l->py2_unicode_size == 2 || l->py2_unicode_size == 4);
            NEED(l, l->py2_int_ival > 0);
        }
        switch (l->dict) {
        case PYSPY_DICT_PY2:
            NEED(l, l->dict_py2_ma_mask > 0);
            break;
        case PYSPY_DICT_PY36:
            NEED(l, l->dict_ma_values > 0 && l->dictkeys_size > 0 &&
                        l->dictkeys_nentries > 0 && l->dictkeys_indices > 0);
            NEED(l, l->dictkeys_kind < 0);
            break;
        case PYSPY_DICT_PY311:
            NEED(l, l->dict_ma_values > 0 && l->dictkeys_size > 0 &&
                        l->dictkeys_kind > 0 && l->dictkeys_nentries > 0 &&
                        l->dictkeys_indices > l->dictkeys_nentries);
            break;
        default:
            NEED(l, !"unknown dict kind");
        }
        if (l->major == 3 && l->minor >= 12)
            NEED(l, l->long_lv_tag > 0 && l->long_digits > l->long_lv_tag);
        else
            NEED(l, l->long_lv_tag < 0);
    }
}

/* A few offsets known independently of the generator (CPython's own
 * structure comments and py-spy-independent facts). */
TEST(spot_values) {
    const pyspy_py_layout *l = pyspy_py_layout_builtin(3, 11, false);
    if (l) {
        CHECK(l->tstate_cframe == 56 && l->cframe_current_frame == 8);
        CHECK(l->iframe_code == 32 && l->iframe_previous == 48);
    }
    l = pyspy_py_layout_builtin(3, 12, false);
    if (l)
        CHECK(l->owner_cstack == 3 && l->iframe_code == 0);
    l = pyspy_py_layout_builtin(2, 7, false);
    if (l)
        CHECK(l->frame_back == 24 && l->frame_code == 32);
    l = pyspy_py_layout_builtin(3, 14, false);
    if (l) {
        CHECK(l->owner_interpreter == 3 && l->owner_cstack == 4);
        CHECK(l->tuple_item == 32); /* 3.14 caches the hash in tuples */
    }
    l = pyspy_py_layout_builtin(3, 13, true);
    if (l)
        CHECK(l->ob_type == 24 && l->var_ob_size == 32);
    l = pyspy_py_layout_builtin(3, 14, true);
    if (l)
        CHECK(l->iframe_tlbc_index > 0 && l->stackref_tag_mask == 1);
}

TEST_MAIN(T(families_present_once), T(unsupported_families_absent),
          T(objects_and_interpreter), T(thread_and_frame_kinds), T(gil_kinds),
          T(str_and_dict_kinds), T(spot_values))
