/* Compiled by tools/gen-layouts once per CPython version against that
 * version's installed headers; prints the version's pyspy_py_layout as a
 * C initializer. Internal structs come from internal/ headers with
 * Py_BUILD_CORE (3.7+); the few structs that never reach an installed
 * header (3.6-3.10 PyDictKeysObject, from Objects/dict-common.h) are
 * mirrored below. Not part of libpyspy. */
#include <Python.h>
#include <frameobject.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define V PY_VERSION_HEX
#if V < 0x030b0000
#include <longintrepr.h>
#endif
#if V >= 0x03070000 && V < 0x03080000
#include <internal/pystate.h>
#elif V >= 0x03080000
#include <internal/pycore_pystate.h>
#if V >= 0x03090000
#include <internal/pycore_interp.h>
#include <internal/pycore_runtime.h>
#endif
#include <internal/pycore_gil.h>
#endif
#if V >= 0x030a0000
#include <internal/pycore_moduleobject.h>
#endif
#if V >= 0x030b0000
#include <internal/pycore_code.h>
#include <internal/pycore_dict.h>
#include <internal/pycore_frame.h>
#include <internal/pycore_object.h>
#endif
#if V >= 0x030c0000
#include <internal/pycore_long.h>
#endif

/* Lib/threading.py's attribute names, read from the version's own
 * threading.py by tools/gen-layouts. */
#if !defined(PYSPY_THREAD_NAME_ATTR) || !defined(PYSPY_THREAD_IDENT_ATTR)
#error "tools/gen-layouts passes -DPYSPY_THREAD_NAME_ATTR and _IDENT_ATTR"
#endif

#if V >= 0x03060000 && V < 0x030b0000
/* Objects/dict-common.h, unchanged from 3.6 to 3.10. */
typedef struct {
    Py_ssize_t dk_refcnt;
    Py_ssize_t dk_size;
    void *dk_lookup;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[8];
} mirror_dictkeys;

/* Objects/dict-common.h, unchanged from 3.6 to 3.10. */
typedef struct {
    Py_hash_t me_hash;
    PyObject *me_key;
    PyObject *me_value;
} mirror_dictentry;
#endif

#if V < 0x030a0000
/* Objects/moduleobject.c (2.7-3.9; later in internal/pycore_moduleobject.h):
 * md_dict is the first field after the header. */
typedef struct {
    PyObject_HEAD PyObject *md_dict;
} mirror_module;
#endif

#if V >= 0x030b0000 && V < 0x030d0000
/* Where the header's own accessor puts an instance's managed-dict slot:
 * called on a stand-in object whose type has the managed-dict flag. */
static PyTypeObject managed_type;
static PyObject *managed_object(void) {
    static PyObject *mem[16];
    PyObject *o = (PyObject *)&mem[8];
    managed_type.tp_flags = Py_TPFLAGS_MANAGED_DICT;
    o->ob_type = &managed_type;
    return o;
}
#define MANAGED_OFF(accessor)                                                  \
    ((long)((char *)accessor(managed_object()) - (char *)managed_object()))
#endif

#define F(field, expr) printf("    .%s = %ld,\n", #field, (long)(expr))
#define NA(field) printf("    .%s = -1,\n", #field)
#define E(field, val) printf("    .%s = %s,\n", #field, val)
#define OF(type, member) ((long)offsetof(type, member))

/* Bit position of a state bitfield, found by setting it alone. */
#define SHIFT(field)                                                           \
    do {                                                                       \
        PyASCIIObject o;                                                       \
        uint32_t w = 0;                                                        \
        memset(&o, 0, sizeof o);                                               \
        o.state.field = 1;                                                     \
        memcpy(&w, (char *)&o + offsetof(PyASCIIObject, state), sizeof w);     \
        printf("    .unicode_state_%s_shift = %d,\n", #field,                  \
               w ? __builtin_ctz(w) : -1);                                     \
    } while (0)

#if V >= 0x030d0000
/* Where, inside this version's _Py_DebugOffsets, the target stores each
 * offset the layout carries: {offsetof(pyspy_py_layout, field), offset
 * of the uint64 in _Py_DebugOffsets}. */
#define DM(field, path)                                                        \
    printf("        {offsetof(pyspy_py_layout, %s), %ld},\n", #field,          \
           OF(_Py_DebugOffsets, path))

static void debug_map(void) {
    printf("{\n    .major = %d,\n    .minor = %d,\n", PY_MAJOR_VERSION,
           PY_MINOR_VERSION);
#ifdef Py_GIL_DISABLED
    E(free_threaded, "true");
#else
    E(free_threaded, "false");
#endif
    F(size, sizeof(_Py_DebugOffsets));
    F(version, OF(_Py_DebugOffsets, version));
    F(free_threaded_flag, OF(_Py_DebugOffsets, free_threaded));
    F(gil_base, OF(_Py_DebugOffsets, interpreter_state.gil_runtime_state));
    F(gil_locked,
      OF(_Py_DebugOffsets, interpreter_state.gil_runtime_state_locked));
    F(gil_holder,
      OF(_Py_DebugOffsets, interpreter_state.gil_runtime_state_holder));
#if V >= 0x030e0000 && defined(Py_GIL_DISABLED)
    F(tlbc_index, OF(_Py_DebugOffsets, interpreter_frame.tlbc_index));
#else
    NA(tlbc_index);
#endif
#if V >= 0x030e0000
    F(gc_base, OF(_Py_DebugOffsets, interpreter_state.gc));
    F(gc_collecting, OF(_Py_DebugOffsets, gc.collecting));
#else
    NA(gc_base);
    NA(gc_collecting);
#endif
#if V >= 0x030f0000
    F(gc_frame, OF(_Py_DebugOffsets, gc.frame));
#else
    NA(gc_frame);
#endif
    printf("    .fields = {\n");
    DM(runtime_interpreters_head, runtime_state.interpreters_head);
    DM(interp_size, interpreter_state.size);
    DM(interp_id, interpreter_state.id);
    DM(interp_next, interpreter_state.next);
    DM(interp_tstate_head, interpreter_state.threads_head);
    DM(interp_modules, interpreter_state.imports_modules);
    DM(interp_sysdict, interpreter_state.sysdict);
    DM(interp_gil_ptr, interpreter_state.ceval_gil);
    DM(tstate_size, thread_state.size);
    DM(tstate_next, thread_state.next);
    DM(tstate_interp, thread_state.interp);
    DM(tstate_frame, thread_state.current_frame);
    DM(tstate_thread_id, thread_state.thread_id);
    DM(tstate_native_thread_id, thread_state.native_thread_id);
    DM(iframe_previous, interpreter_frame.previous);
    DM(iframe_code, interpreter_frame.executable);
    DM(iframe_instr_ptr, interpreter_frame.instr_ptr);
    DM(iframe_localsplus, interpreter_frame.localsplus);
    DM(frame_size, interpreter_frame.localsplus);
    DM(iframe_owner, interpreter_frame.owner);
    DM(code_filename, code_object.filename);
    DM(code_name, code_object.name);
    DM(code_qualname, code_object.qualname);
    DM(code_linetable, code_object.linetable);
    DM(code_firstlineno, code_object.firstlineno);
    DM(code_argcount, code_object.argcount);
    DM(code_localsplusnames, code_object.localsplusnames);
    DM(code_localspluskinds, code_object.localspluskinds);
    DM(code_code_adaptive, code_object.co_code_adaptive);
    DM(code_size, code_object.co_code_adaptive);
    DM(pyobject_size, pyobject.size);
    DM(ob_type, pyobject.ob_type);
    DM(type_tp_name, type_object.tp_name);
    DM(type_tp_flags, type_object.tp_flags);
#if V >= 0x030f0000
    DM(type_tp_dictoffset, type_object.tp_dictoffset);
    DM(unicode_compact_data, unicode_object.compactunicodeobject_size);
    DM(unicode_nonstate_data, unicode_object.compactunicodeobject_size);
#endif
    DM(tuple_item, tuple_object.ob_item);
    DM(var_ob_size, tuple_object.ob_size);
    DM(list_item, list_object.ob_item);
#if V >= 0x030e0000
    DM(set_used, set_object.used);
    DM(set_table, set_object.table);
    DM(set_mask, set_object.mask);
#endif
    DM(dict_ma_keys, dict_object.ma_keys);
    DM(dict_ma_values, dict_object.ma_values);
    DM(float_fval, float_object.ob_fval);
    DM(long_lv_tag, long_object.lv_tag);
    DM(long_digits, long_object.ob_digit);
    DM(bytes_sval, bytes_object.ob_sval);
    DM(unicode_state, unicode_object.state);
    DM(unicode_length, unicode_object.length);
    DM(unicode_ascii_data, unicode_object.asciiobject_size);
    printf("    },\n},\n");
}
#endif

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "debug") == 0) {
#if V >= 0x030d0000
        debug_map();
#endif
        return 0;
    }
    printf("{\n    .major = %d,\n    .minor = %d,\n", PY_MAJOR_VERSION,
           PY_MINOR_VERSION);
#ifdef Py_GIL_DISABLED
    E(free_threaded, "true");
#else
    E(free_threaded, "false");
#endif

    /* Kinds (the walkers and the object reader switch on these). */
#if V < 0x030a0000
    E(lines, "PYSPY_LINES_LNOTAB");
#elif V < 0x030b0000
    E(lines, "PYSPY_LINES_LINETABLE310");
#else
    E(lines, "PYSPY_LINES_LOCATIONS311");
#endif
#if V < 0x030b0000
    E(threads, "PYSPY_THREADS_FRAME");
#elif V < 0x030d0000
    E(threads, "PYSPY_THREADS_CFRAME");
#else
    E(threads, "PYSPY_THREADS_CURRENT_FRAME");
#endif
#if V < 0x03070000
    E(gil, "PYSPY_GIL_TSTATE_CURRENT");
#elif V < 0x030c0000
    E(gil, "PYSPY_GIL_RUNTIME");
#else
    E(gil, "PYSPY_GIL_INTERP_PTR");
#endif
#if PY_MAJOR_VERSION == 2
    E(str, "PYSPY_STR_PY2");
    E(dict, "PYSPY_DICT_PY2");
#elif V < 0x030b0000
    E(str, "PYSPY_STR_PY3");
    E(dict, "PYSPY_DICT_PY36");
#else
    E(str, "PYSPY_STR_PY3");
    E(dict, "PYSPY_DICT_PY311");
#endif
    /* CPython's own f_lineno uses instr_ptr as is (3.13+ LASTI is
     * instr_ptr - first code unit), checked against live 3.13. */
    E(instr_ptr_is_next, "false");
    E(tagged_stackrefs, V >= 0x030e0000 ? "true" : "false");
    /* 3.15 dropped the C-stack owner: entry frames are owned by the
     * interpreter. */
#if V >= 0x030c0000 && V < 0x030f0000
    F(owner_cstack, FRAME_OWNED_BY_CSTACK);
#else
    NA(owner_cstack);
#endif
#if V >= 0x030e0000
    F(owner_interpreter, FRAME_OWNED_BY_INTERPRETER);
#else
    NA(owner_interpreter);
#endif

    /* _PyRuntimeState */
#if V >= 0x03070000
    F(runtime_interpreters_head, OF(_PyRuntimeState, interpreters.head));
#else
    NA(runtime_interpreters_head);
#endif
#if V >= 0x03070000 && V < 0x030c0000
    F(runtime_gil, OF(_PyRuntimeState, ceval.gil));
    F(runtime_tstate_current, OF(_PyRuntimeState, gilstate.tstate_current));
#else
    NA(runtime_gil);
    NA(runtime_tstate_current);
#endif
#if V >= 0x030d0000
    F(runtime_debug_offsets, OF(_PyRuntimeState, debug_offsets));
#else
    NA(runtime_debug_offsets);
#endif

    /* PyInterpreterState */
    F(interp_next, OF(PyInterpreterState, next));
#if V >= 0x030b0000
    F(interp_tstate_head, OF(PyInterpreterState, threads.head));
#else
    F(interp_tstate_head, OF(PyInterpreterState, tstate_head));
#endif
#if V >= 0x03070000
    F(interp_id, OF(PyInterpreterState, id));
#else
    NA(interp_id);
#endif
#if V >= 0x030c0000
    F(interp_modules, OF(PyInterpreterState, imports.modules));
    F(interp_gil_ptr, OF(PyInterpreterState, ceval.gil));
#else
    F(interp_modules, OF(PyInterpreterState, modules));
    NA(interp_gil_ptr);
#endif
    F(interp_sysdict, OF(PyInterpreterState, sysdict));
    F(interp_size, sizeof(PyInterpreterState));

    /* struct _gil_runtime_state (2.7/3.6: static variables in ceval.c) */
#if V >= 0x03070000
    F(gil_locked, OF(struct _gil_runtime_state, locked));
    F(gil_last_holder, OF(struct _gil_runtime_state, last_holder));
#else
    NA(gil_locked);
    NA(gil_last_holder);
#endif

    /* PyThreadState */
    F(tstate_next, OF(PyThreadState, next));
    F(tstate_interp, OF(PyThreadState, interp));
#if V < 0x030b0000
    F(tstate_frame, OF(PyThreadState, frame));
    NA(tstate_cframe);
    NA(cframe_current_frame);
#elif V < 0x030d0000
    NA(tstate_frame);
    F(tstate_cframe, OF(PyThreadState, cframe));
    F(cframe_current_frame, OF(_PyCFrame, current_frame));
#else
    F(tstate_frame, OF(PyThreadState, current_frame));
    NA(tstate_cframe);
    NA(cframe_current_frame);
#endif
    F(tstate_thread_id, OF(PyThreadState, thread_id));
#if V >= 0x030b0000
    F(tstate_native_thread_id, OF(PyThreadState, native_thread_id));
#else
    NA(tstate_native_thread_id);
#endif
    F(tstate_size, sizeof(PyThreadState));

    /* Garbage collector state: 2.7/3.6 keep it in gcmodule.c statics. */
#if V >= 0x03070000 && V < 0x03090000
    F(runtime_gc_collecting, OF(_PyRuntimeState, gc.collecting));
#else
    NA(runtime_gc_collecting);
#endif
#if V >= 0x03090000
    F(interp_gc_collecting, OF(PyInterpreterState, gc.collecting));
#else
    NA(interp_gc_collecting);
#endif
#if V >= 0x030f0000
    F(interp_gc_frame, OF(PyInterpreterState, gc.frame));
#else
    NA(interp_gc_frame);
#endif

    /* The exception being handled (sys.exc_info()). */
#if V >= 0x03070000
    NA(tstate_exc_value);
    F(tstate_exc_info, OF(PyThreadState, exc_info));
    F(stackitem_exc_value, OF(_PyErr_StackItem, exc_value));
    F(stackitem_previous, OF(_PyErr_StackItem, previous_item));
#else
    F(tstate_exc_value, OF(PyThreadState, exc_value));
    NA(tstate_exc_info);
    NA(stackitem_exc_value);
    NA(stackitem_previous);
#endif

    /* Frames */
#if V < 0x030b0000
    F(frame_back, OF(PyFrameObject, f_back));
    F(frame_code, OF(PyFrameObject, f_code));
    F(frame_lasti, OF(PyFrameObject, f_lasti));
    F(frame_lineno, OF(PyFrameObject, f_lineno));
    F(frame_localsplus, OF(PyFrameObject, f_localsplus));
    F(frame_size, OF(PyFrameObject, f_localsplus));
    NA(iframe_previous);
    NA(iframe_code);
    NA(iframe_instr_ptr);
    NA(iframe_localsplus);
    NA(iframe_owner);
    NA(iframe_stacktop);
    F(iframe_is_entry, 0);
#else
    NA(frame_back);
    NA(frame_code);
    NA(frame_lasti);
    NA(frame_lineno);
    NA(frame_localsplus);
    F(frame_size, OF(_PyInterpreterFrame, localsplus));
    F(iframe_previous, OF(_PyInterpreterFrame, previous));
#if V >= 0x030d0000
    F(iframe_code, OF(_PyInterpreterFrame, f_executable));
    F(iframe_instr_ptr, OF(_PyInterpreterFrame, instr_ptr));
#else
    F(iframe_code, OF(_PyInterpreterFrame, f_code));
    F(iframe_instr_ptr, OF(_PyInterpreterFrame, prev_instr));
#endif
    F(iframe_localsplus, OF(_PyInterpreterFrame, localsplus));
    F(iframe_owner, OF(_PyInterpreterFrame, owner));
#if V >= 0x030e0000
    NA(iframe_stacktop);
#else
    F(iframe_stacktop, OF(_PyInterpreterFrame, stacktop));
#endif
#if V < 0x030c0000
    F(iframe_is_entry, OF(_PyInterpreterFrame, is_entry));
#else
    F(iframe_is_entry, 0);
#endif
#endif
#if V >= 0x030e0000 && defined(Py_GIL_DISABLED)
    F(iframe_tlbc_index, OF(_PyInterpreterFrame, tlbc_index));
#else
    NA(iframe_tlbc_index);
#endif
#if V >= 0x030e0000
    F(stackref_tag_mask, Py_TAG_BITS);
#else
    F(stackref_tag_mask, 0);
#endif

    /* PyCodeObject */
    F(code_filename, OF(PyCodeObject, co_filename));
    F(code_name, OF(PyCodeObject, co_name));
#if V >= 0x030b0000
    F(code_qualname, OF(PyCodeObject, co_qualname));
#else
    NA(code_qualname);
#endif
    F(code_firstlineno, OF(PyCodeObject, co_firstlineno));
#if V >= 0x030a0000
    F(code_linetable, OF(PyCodeObject, co_linetable));
#else
    F(code_linetable, OF(PyCodeObject, co_lnotab));
#endif
    F(code_argcount, OF(PyCodeObject, co_argcount));
#if V >= 0x03080000
    F(code_posonlyargcount, OF(PyCodeObject, co_posonlyargcount));
#else
    NA(code_posonlyargcount);
#endif
#if PY_MAJOR_VERSION >= 3
    F(code_kwonlyargcount, OF(PyCodeObject, co_kwonlyargcount));
#else
    NA(code_kwonlyargcount);
#endif
    F(code_nlocals, OF(PyCodeObject, co_nlocals));
    F(code_flags, OF(PyCodeObject, co_flags));
#if V < 0x030b0000
    F(code_varnames, OF(PyCodeObject, co_varnames));
    F(code_cellvars, OF(PyCodeObject, co_cellvars));
    F(code_freevars, OF(PyCodeObject, co_freevars));
    NA(code_localsplusnames);
    NA(code_localspluskinds);
    NA(code_code_adaptive);
    NA(code_nlocalsplus);
    F(code_size, sizeof(PyCodeObject));
#else
    NA(code_varnames);
    NA(code_cellvars);
    NA(code_freevars);
    F(code_localsplusnames, OF(PyCodeObject, co_localsplusnames));
    F(code_localspluskinds, OF(PyCodeObject, co_localspluskinds));
    F(code_code_adaptive, OF(PyCodeObject, co_code_adaptive));
    F(code_nlocalsplus, OF(PyCodeObject, co_nlocalsplus));
    F(code_size, OF(PyCodeObject, co_code_adaptive));
#endif
#if PY_MAJOR_VERSION == 2
    F(code_unit_size, 1); /* bytes: instructions of 1 or 3 of them */
#else
    F(code_unit_size, sizeof(_Py_CODEUNIT));
#endif
#if V < 0x030a0000
    F(frame_lasti_unit, 1);
#elif V < 0x030b0000
    F(frame_lasti_unit, sizeof(_Py_CODEUNIT));
#else
    NA(frame_lasti_unit);
#endif
    F(co_varargs, CO_VARARGS);
    F(co_varkeywords, CO_VARKEYWORDS);
#if V >= 0x030c0000
    F(co_fast_hidden, CO_FAST_HIDDEN);
#else
    F(co_fast_hidden, 0);
#endif
#if V >= 0x030b0000
    F(co_fast_cell, CO_FAST_CELL);
    F(co_fast_free, CO_FAST_FREE);
#else
    F(co_fast_cell, 0);
    F(co_fast_free, 0);
#endif
    E(lnotab_unsigned_deltas, PY_MAJOR_VERSION == 2 ? "true" : "false");

    /* Objects */
    F(ob_type, OF(PyObject, ob_type));
    F(var_ob_size, OF(PyVarObject, ob_size));
    F(pyobject_size, sizeof(PyObject));
    F(type_tp_name, OF(PyTypeObject, tp_name));
    F(type_tp_flags, OF(PyTypeObject, tp_flags));
    F(type_tp_dictoffset, OF(PyTypeObject, tp_dictoffset));

#if PY_MAJOR_VERSION >= 3
    F(unicode_length, OF(PyASCIIObject, length));
    F(unicode_state, OF(PyASCIIObject, state));
    F(unicode_ascii_data, sizeof(PyASCIIObject));
    F(unicode_compact_data, sizeof(PyCompactUnicodeObject));
    F(unicode_nonstate_data, OF(PyUnicodeObject, data));
    SHIFT(kind);
    SHIFT(compact);
    SHIFT(ascii);
    NA(py2_str_sval);
    NA(py2_unicode_length);
    NA(py2_unicode_str);
    NA(py2_unicode_size);
    F(bytes_sval, OF(PyBytesObject, ob_sval));
    NA(py2_int_ival);
#else
    NA(unicode_length);
    NA(unicode_state);
    NA(unicode_ascii_data);
    NA(unicode_compact_data);
    NA(unicode_nonstate_data);
    NA(unicode_state_kind_shift);
    NA(unicode_state_compact_shift);
    NA(unicode_state_ascii_shift);
    F(py2_str_sval, OF(PyStringObject, ob_sval));
    F(py2_unicode_length, OF(PyUnicodeObject, length));
    F(py2_unicode_str, OF(PyUnicodeObject, str));
    F(py2_unicode_size, sizeof(Py_UNICODE));
    F(bytes_sval, OF(PyStringObject, ob_sval));
    F(py2_int_ival, OF(PyIntObject, ob_ival));
#endif
    F(tuple_item, OF(PyTupleObject, ob_item));
    F(list_item, OF(PyListObject, ob_item));
    F(float_fval, OF(PyFloatObject, ob_fval));
#if V >= 0x030c0000
    F(long_digits, OF(PyLongObject, long_value.ob_digit));
    F(long_lv_tag, OF(PyLongObject, long_value.lv_tag));
#else
    F(long_digits, OF(PyLongObject, ob_digit));
    NA(long_lv_tag);
#endif

    /* dict and set */
    F(dict_ma_used, OF(PyDictObject, ma_used));
#if PY_MAJOR_VERSION == 2
    F(dict_ma_keys, OF(PyDictObject, ma_table));
    NA(dict_ma_values);
    F(dict_py2_ma_mask, OF(PyDictObject, ma_mask));
    NA(dictkeys_size);
    NA(dictkeys_kind);
    NA(dictkeys_nentries);
    NA(dictkeys_indices);
#else
    F(dict_ma_keys, OF(PyDictObject, ma_keys));
    F(dict_ma_values, OF(PyDictObject, ma_values));
    NA(dict_py2_ma_mask);
#if V < 0x030b0000
    F(dictkeys_size, OF(mirror_dictkeys, dk_size));
    NA(dictkeys_kind);
    F(dictkeys_nentries, OF(mirror_dictkeys, dk_nentries));
    F(dictkeys_indices, OF(mirror_dictkeys, dk_indices));
#else
    F(dictkeys_size, OF(PyDictKeysObject, dk_log2_size));
    F(dictkeys_kind, OF(PyDictKeysObject, dk_kind));
    F(dictkeys_nentries, OF(PyDictKeysObject, dk_nentries));
    F(dictkeys_indices, OF(PyDictKeysObject, dk_indices));
#endif
#endif
    F(set_table, OF(PySetObject, table));
    F(set_mask, OF(PySetObject, mask));
    F(set_used, OF(PySetObject, used));
    F(set_entry_key, OF(setentry, key));
    F(set_entry_size, sizeof(setentry));
#if PY_MAJOR_VERSION == 2
    F(dictentry_size, sizeof(PyDictEntry));
    F(dictentry_key, OF(PyDictEntry, me_key));
    F(dictentry_value, OF(PyDictEntry, me_value));
#elif V < 0x030b0000
    F(dictentry_size, sizeof(mirror_dictentry));
    F(dictentry_key, OF(mirror_dictentry, me_key));
    F(dictentry_value, OF(mirror_dictentry, me_value));
#else
    F(dictentry_size, sizeof(PyDictKeyEntry));
    F(dictentry_key, OF(PyDictKeyEntry, me_key));
    F(dictentry_value, OF(PyDictKeyEntry, me_value));
#endif
#if V >= 0x030b0000
    F(dictuentry_size, sizeof(PyDictUnicodeEntry));
    F(dictuentry_key, OF(PyDictUnicodeEntry, me_key));
    F(dictuentry_value, OF(PyDictUnicodeEntry, me_value));
    F(dictkeys_general, DICT_KEYS_GENERAL);
    F(dictkeys_unicode, DICT_KEYS_UNICODE);
    F(dictkeys_split, DICT_KEYS_SPLIT);
    F(dictvalues_values, OF(PyDictValues, values));
#else
    NA(dictuentry_size);
    NA(dictuentry_key);
    NA(dictuentry_value);
    NA(dictkeys_general);
    NA(dictkeys_unicode);
    NA(dictkeys_split);
    /* ma_values is the PyObject* array itself */
    F(dictvalues_values, 0);
#endif
#if V >= 0x030d0000
    F(dictvalues_capacity, OF(PyDictValues, capacity));
    F(dictvalues_valid, OF(PyDictValues, valid));
#else
    NA(dictvalues_capacity);
    NA(dictvalues_valid);
#endif

    /* Objects beyond the walker's (analyze/objects/) */
#if PY_MAJOR_VERSION == 2
    E(builtins, "PYSPY_BUILTINS_PY2");
#else
    E(builtins, "PYSPY_BUILTINS_PY3");
#endif
#if V < 0x030b0000
    E(idict, "PYSPY_IDICT_DICTOFFSET");
    F(managed_dict_off, 0);
    F(managed_values_off, 0);
#elif V < 0x030c0000
    E(idict, "PYSPY_IDICT_MANAGED311");
    F(managed_dict_off, MANAGED_OFF(_PyObject_ManagedDictPointer));
    F(managed_values_off, MANAGED_OFF(_PyObject_ValuesPointer));
#elif V < 0x030d0000
    E(idict, "PYSPY_IDICT_MANAGED312");
    F(managed_dict_off, MANAGED_OFF(_PyObject_DictOrValuesPointer));
    F(managed_values_off, 0);
#else
    E(idict, "PYSPY_IDICT_MANAGED313");
    F(managed_dict_off, MANAGED_DICT_OFFSET);
    F(managed_values_off, 0);
#endif
    F(cell_ob_ref, OF(PyCellObject, ob_ref));
#if V >= 0x030a0000
    F(module_md_dict, OF(PyModuleObject, md_dict));
#else
    F(module_md_dict, OF(mirror_module, md_dict));
#endif
    F(type_tp_basicsize, OF(PyTypeObject, tp_basicsize));
#if PY_MAJOR_VERSION >= 3
    F(heaptype_cached_keys, OF(PyHeapTypeObject, ht_cached_keys));
#else
    NA(heaptype_cached_keys);
#endif
    F(long_digit_bits, PyLong_SHIFT);
    F(long_digit_size, sizeof(digit));
#if V >= 0x030c0000
    F(long_tag_sign_mask, SIGN_MASK);
    F(long_tag_sign_zero, SIGN_ZERO);
    F(long_tag_sign_negative, SIGN_NEGATIVE);
    F(long_tag_ndigits_shift, NON_SIZE_BITS);
#else
    NA(long_tag_sign_mask);
    NA(long_tag_sign_zero);
    NA(long_tag_sign_negative);
    NA(long_tag_ndigits_shift);
#endif
    F(tpflags_heaptype, Py_TPFLAGS_HEAPTYPE);
#if PY_MAJOR_VERSION == 2
    F(tpflags_int_subclass, Py_TPFLAGS_INT_SUBCLASS);
#else
    F(tpflags_int_subclass, 0);
#endif
    F(tpflags_long_subclass, Py_TPFLAGS_LONG_SUBCLASS);
    F(tpflags_list_subclass, Py_TPFLAGS_LIST_SUBCLASS);
    F(tpflags_tuple_subclass, Py_TPFLAGS_TUPLE_SUBCLASS);
    F(tpflags_bytes_subclass, Py_TPFLAGS_BYTES_SUBCLASS);
    F(tpflags_unicode_subclass, Py_TPFLAGS_UNICODE_SUBCLASS);
    F(tpflags_dict_subclass, Py_TPFLAGS_DICT_SUBCLASS);
#if V >= 0x030b0000
    F(tpflags_managed_dict, Py_TPFLAGS_MANAGED_DICT);
#else
    F(tpflags_managed_dict, 0);
#endif
#if V >= 0x030d0000
    F(tpflags_inline_values, Py_TPFLAGS_INLINE_VALUES);
#else
    F(tpflags_inline_values, 0);
#endif
    printf("    .thread_name_attr = \"%s\",\n", PYSPY_THREAD_NAME_ATTR);
    printf("    .thread_ident_attr = \"%s\",\n", PYSPY_THREAD_IDENT_ATTR);
    printf("},\n");
    return 0;
}
