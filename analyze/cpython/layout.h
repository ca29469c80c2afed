/* Per-version CPython layouts: every offset, size, flag bit and kind the
 * walker and the object reader use. This is the only place version differences
 * live: a table per version (generated from that version's headers with
 * offsetof, see tools/gen-layouts) or, for 3.13+, filled from the target's
 * _Py_DebugOffsets. Code that walks memory reads fields by these names and
 * never tests the version number.
 *
 * Offsets are in bytes; -1 means "this version has no such field". */
#ifndef PYSPY_PY_LAYOUT_H
#define PYSPY_PY_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    PYSPY_LINES_LNOTAB = 0,   /* 2.7-3.9: co_lnotab, f_lasti in bytes */
    PYSPY_LINES_LINETABLE310, /* 3.10: co_linetable, f_lasti in code units */
    PYSPY_LINES_LOCATIONS311  /* 3.11+: co_linetable location entries */
} pyspy_lines_kind;

typedef enum {
    PYSPY_THREADS_FRAME = 0,    /* tstate->frame is a PyFrameObject* */
    PYSPY_THREADS_CFRAME,       /* tstate->cframe->current_frame (3.11-3.12) */
    PYSPY_THREADS_CURRENT_FRAME /* tstate->current_frame (3.13+) */
} pyspy_threads_kind;

typedef enum {
    PYSPY_GIL_TSTATE_CURRENT = 0, /* 2.7/3.6: _PyThreadState_Current symbol */
    PYSPY_GIL_RUNTIME,            /* 3.7-3.11: _PyRuntime.ceval.gil */
    PYSPY_GIL_INTERP_PTR          /* 3.12+: *(interp->ceval.gil) */
} pyspy_gil_kind;

typedef enum {
    PYSPY_STR_PY3 = 0, /* PEP 393 compact unicode */
    PYSPY_STR_PY2      /* PyStringObject + PyUnicodeObject(wchar buffer) */
} pyspy_str_kind;

typedef enum {
    PYSPY_DICT_PY2 = 0, /* 2.7: ma_table of {hash,key,value} */
    PYSPY_DICT_PY36,    /* 3.6-3.10: PyDictKeysObject, dk_size, entries */
    PYSPY_DICT_PY311    /* 3.11+: dk_log2_size, dk_kind, unicode entries */
} pyspy_dict_kind;

/* Which builtin types exist and how their reprs look. */
typedef enum {
    PYSPY_BUILTINS_PY3 = 0, /* str, bytes, int; {1, 2} sets */
    PYSPY_BUILTINS_PY2      /* str is bytes, u'' unicode, int and 1L long,
                               set([1, 2]) */
} pyspy_builtins_kind;

/* Where an instance keeps its __dict__ (types with the managed-dict
 * flag; others use tp_dictoffset in every version). */
typedef enum {
    PYSPY_IDICT_DICTOFFSET = 0, /* <= 3.10: tp_dictoffset only */
    /* 3.11: dict pointer at managed_dict_off or, while there is none, a
     * values array pointer at managed_values_off */
    PYSPY_IDICT_MANAGED311,
    /* 3.12: one slot at managed_dict_off: a dict, or an odd pointer that
     * is the values array minus one */
    PYSPY_IDICT_MANAGED312,
    /* 3.13+: a dict at managed_dict_off; else, with the inline-values
     * flag, a PyDictValues right after the object (tp_basicsize) */
    PYSPY_IDICT_MANAGED313
} pyspy_idict_kind;

typedef struct pyspy_py_layout {
    int major, minor;   /* the family this table is for */
    bool free_threaded; /* Py_GIL_DISABLED build */
    pyspy_lines_kind lines;
    pyspy_threads_kind threads;
    pyspy_gil_kind gil;
    pyspy_str_kind str;
    pyspy_dict_kind dict;
    /* Whether the frame's instruction pointer is one unit past the
     * instruction whose line the interpreter reports (subtract one unit).
     * False for every CPython so far: 3.11-3.12 prev_instr and 3.13+
     * instr_ptr both point at the executing instruction (CPython's own
     * _PyInterpreterFrame_LASTI uses them as they are). */
    bool instr_ptr_is_next;
    /* 3.14+: _PyInterpreterFrame.f_executable and localsplus[] hold
     * _PyStackRef values: clear stackref_tag_mask bits to get the object
     * pointer (3.14+ GIL builds also tag small ints with 3; such a value
     * is not a pointer). */
    bool tagged_stackrefs;
    /* _PyInterpreterFrame.owner values of frames that are not Python
     * function frames and must be skipped; such a frame is the entry
     * frame one _PyEval_EvalFrameDefault invocation keeps on the C stack,
     * so it also marks where that invocation began:
     *   owner_cstack: FRAME_OWNED_BY_CSTACK (3 in 3.12-3.13, where the
     *   entry frame has it; 4 in 3.14, which assigns it to no frame);
     *   owner_interpreter: FRAME_OWNED_BY_INTERPRETER (3 in 3.14+, the
     *   entry frame's owner there; 3.15 dropped CSTACK).
     * -1 when the version has no such owner. 3.11 has neither and flags
     * entry frames with iframe_is_entry instead. */
    int owner_cstack;
    int owner_interpreter;

    /* _PyRuntimeState (3.7+; pyspy_python.runtime_addr is &_PyRuntime) */
    /* interpreters.head: PyInterpreterState* of the newest interpreter
     * (the main one when there are no subinterpreters). */
    int32_t runtime_interpreters_head;
    /* ceval.gil: the _gil_runtime_state embedded in the runtime
     * (3.7-3.11; add gil_locked/gil_last_holder to it). */
    int32_t runtime_gil;

    /* PyInterpreterState (pyspy_python.interp_head is the first one) */
    int32_t interp_next;        /* PyInterpreterState*, NULL ends */
    int32_t interp_tstate_head; /* PyThreadState* (threads.head in 3.11+) */
    int32_t interp_id;          /* int64_t, 3.7+ */
    int32_t interp_modules;     /* PyObject* sys.modules (imports.modules
                                   in 3.12+) */
    int32_t interp_sysdict;     /* PyObject* sys.__dict__ */
    int32_t interp_gil_ptr;     /* 3.12+ ceval.gil: _gil_runtime_state* */

    /* struct _gil_runtime_state, relative to its start (3.7+; 2.7/3.6
     * keep these in statics, use _PyThreadState_Current instead) */
    int32_t gil_locked;      /* int (4 bytes): 1 while some thread holds it;
                                -1 before the GIL exists */
    int32_t gil_last_holder; /* PyThreadState*: holder when locked */

    /* PyThreadState */
    int32_t tstate_next;   /* PyThreadState*, NULL ends */
    int32_t tstate_interp; /* PyInterpreterState* owning it */
    /* PYSPY_THREADS_FRAME: PyFrameObject* frame (<= 3.10);
     * PYSPY_THREADS_CURRENT_FRAME: _PyInterpreterFrame* current_frame
     * (3.13+); -1 for CFRAME. NULL when the thread runs no Python. */
    int32_t tstate_frame;
    int32_t tstate_cframe; /* 3.11-3.12: _PyCFrame* cframe */
    /* unsigned long thread_id: the pthread_t (threading.get_ident()) */
    int32_t tstate_thread_id;
    int32_t tstate_native_thread_id; /* kernel tid; -1 before 3.11 */
    int32_t cframe_current_frame;    /* _PyCFrame: _PyInterpreterFrame* */

    /* PyFrameObject (<= 3.10) */
    int32_t frame_back; /* PyFrameObject* caller, NULL ends */
    int32_t frame_code; /* PyCodeObject* */
    /* int f_lasti: last instruction, in bytes (<= 3.9) or code units
     * (3.10; times code_unit_size for bytes); -1 before the first. */
    int32_t frame_lasti;
    /* int f_lineno: only valid while tracing (3.10: always 0 unless
     * tracing); compute lines from the line table instead. */
    int32_t frame_lineno;
    int32_t frame_localsplus; /* PyObject* f_localsplus[] (inline) */

    /* _PyInterpreterFrame (3.11+) */
    int32_t iframe_previous; /* _PyInterpreterFrame*, NULL ends */
    /* f_code (PyCodeObject*, 3.11-3.12) / f_executable (PyObject*, 3.13;
     * _PyStackRef, 3.14+): check it is a code object before using it. */
    int32_t iframe_code;
    /* _Py_CODEUNIT*: prev_instr (3.11-3.12) / instr_ptr (3.13+), into
     * the code object's co_code_adaptive (or, free-threaded 3.14+, a
     * thread-local copy: see iframe_tlbc_index). */
    int32_t iframe_instr_ptr;
    int32_t iframe_localsplus; /* localsplus[]: PyObject* or _PyStackRef */
    int32_t iframe_owner;      /* char: FRAME_OWNED_BY_* */
    int32_t iframe_stacktop;   /* int (3.11-3.13); -1: a pointer (3.14+) */

    /* PyCodeObject */
    int32_t code_filename;
    int32_t code_name;
    int32_t code_qualname;    /* -1 before 3.11 */
    int32_t code_firstlineno; /* int */
    /* PyBytesObject*: co_lnotab (<= 3.9, see lines) / co_linetable */
    int32_t code_linetable;
    /* ints; posonly 3.8+, kwonly 3.x */
    int32_t code_argcount;
    int32_t code_posonlyargcount;
    int32_t code_kwonlyargcount;
    int32_t code_nlocals;
    int32_t code_flags;
    int32_t code_varnames;        /* <= 3.10: tuple of str */
    int32_t code_cellvars;        /* <= 3.10: tuple of str */
    int32_t code_freevars;        /* <= 3.10: tuple of str */
    int32_t code_localsplusnames; /* 3.11+: tuple of str */
    int32_t code_localspluskinds; /* 3.11+: bytes, CO_FAST_* per name */
    /* 3.11+: co_code_adaptive[], inline in the code object: the
     * instruction index is (instr_ptr - (code + this)) / code_unit_size */
    int32_t code_code_adaptive;

    /* Objects */
    int32_t ob_type;            /* PyTypeObject* (24 in free-threaded builds) */
    int32_t var_ob_size;        /* Py_ssize_t ob_size of a PyVarObject */
    int32_t type_tp_name;       /* const char* */
    int32_t type_tp_flags;      /* unsigned long */
    int32_t type_tp_dictoffset; /* Py_ssize_t */

    /* str (PEP 393) */
    int32_t unicode_length;       /* Py_ssize_t, in code points */
    int32_t unicode_state;        /* 32-bit word holding the state bit-fields */
    int32_t unicode_ascii_data;   /* sizeof(PyASCIIObject) */
    int32_t unicode_compact_data; /* sizeof(PyCompactUnicodeObject) */
    int32_t unicode_nonstate_data; /* non-compact: data.any pointer */
    /* bit positions in the state word */
    int8_t unicode_state_kind_shift;
    int8_t unicode_state_compact_shift;
    int8_t unicode_state_ascii_shift;
    /* 2.7 */
    int32_t py2_str_sval;
    int32_t py2_unicode_length;
    int32_t py2_unicode_str;  /* Py_UNICODE* */
    int32_t py2_unicode_size; /* sizeof(Py_UNICODE): 2 or 4 */

    int32_t bytes_sval;   /* char ob_sval[] inline (2.7: PyStringObject) */
    int32_t tuple_item;   /* PyObject* ob_item[] inline */
    int32_t list_item;    /* PyObject** ob_item: pointer to the array */
    int32_t float_fval;   /* double */
    int32_t long_digits;  /* uint32 ob_digit[] (30-bit digits) inline */
    int32_t long_lv_tag;  /* 3.12+: lv_tag; -1 means sign in ob_size */
    int32_t py2_int_ival; /* 2.7 PyIntObject */

    /* dict */
    int32_t dict_ma_used;     /* Py_ssize_t items */
    int32_t dict_ma_keys;     /* PyDictKeysObject* (2.7: ma_table) */
    int32_t dict_ma_values;   /* PyObject** / PyDictValues*: split table */
    int32_t dict_py2_ma_mask; /* 2.7 Py_ssize_t: slots - 1 */
    /* PyDictKeysObject: Py_ssize_t dk_size (3.6-3.10) or uint8
     * dk_log2_size (3.11+) */
    int32_t dictkeys_size;
    int32_t dictkeys_kind;     /* 3.11+ uint8 dk_kind (0 general), -1 */
    int32_t dictkeys_nentries; /* Py_ssize_t used entries */
    /* dk_indices[]: size slots of 1/2/4/8 bytes, then the entries */
    int32_t dictkeys_indices;
    int32_t set_table; /* PySetObject: setentry* table */
    int32_t set_mask;  /* Py_ssize_t slots - 1 */
    int32_t set_used;  /* Py_ssize_t items */

    /* Added by the walker (0/false in a table that does not set them). */
    /* 2.7: co_lnotab line deltas are unsigned bytes (3.6+: signed). */
    bool lnotab_unsigned_deltas;
    /* 3.11: _PyInterpreterFrame.is_entry (a char); 0 = no such field
     * (offset 0 is f_func/f_code, never this flag). */
    int32_t iframe_is_entry;

    /* Added by the layouts owner (offsets in bytes, -1 = absent). */
    /* _PyRuntimeState.gilstate.tstate_current (3.7-3.11): the thread
     * state holding the GIL, an atomic address. */
    int32_t runtime_tstate_current;
    /* PyCodeObject.co_nlocalsplus (int, 3.11+): entries in localsplus
     * (locals, cells and frees). */
    int32_t code_nlocalsplus;
    /* 3.14+ _PyStackRef: the object pointer is value & ~stackref_tag_mask;
     * 0 where frame fields are plain PyObject pointers. */
    uint32_t stackref_tag_mask;
    /* 3.14+ free-threaded _PyInterpreterFrame.tlbc_index (int32): which
     * thread-local copy of the bytecode instr_ptr points into. */
    int32_t iframe_tlbc_index;
    /* sizeof(PyObject): 16 for GIL builds, 32 for free-threaded ones. */
    int32_t pyobject_size;
    /* 3.13+: offsetof(_PyRuntimeState, debug_offsets) (0: the
     * _Py_DebugOffsets, cookie "xdebugpy", start the runtime). */
    int32_t runtime_debug_offsets;
    /* Bytes per code unit: f_lasti (2.7-3.9 bytes, 3.10 units) and
     * instruction pointers (3.11+) convert with it. 1 for 2.7, else 2. */
    int32_t code_unit_size;
    /* sizeof(PyCodeObject) without the trailing code (3.11+ equals
     * code_code_adaptive); bounds a code object read in one go. */
    int32_t code_size;
    /* sizeof(_PyInterpreterFrame) up to localsplus (3.11+) or
     * sizeof(PyFrameObject) up to f_localsplus (<= 3.10). */
    int32_t frame_size;
    /* sizeof(PyThreadState) and sizeof(PyInterpreterState) as measured
     * for one patch release (others of the family differ by a few bytes
     * at the end; the offsets above do not move). Patched from
     * _Py_DebugOffsets where the target gives them. */
    int32_t tstate_size;
    int32_t interp_size;

    /* The garbage collector's struct _gc_runtime_state: its int
     * collecting, nonzero while a collection runs, in the runtime
     * (3.7-3.8) or in each interpreter (3.9+); 2.7/3.6 keep it in a
     * static of gcmodule.c (both -1). */
    int32_t runtime_gc_collecting;
    int32_t interp_gc_collecting;
    /* 3.15+: gc.frame, the _PyInterpreterFrame* that was running when the
     * current collection started (NULL if none): names the thread. */
    int32_t interp_gc_frame;

    /* The exception being handled, as sys.exc_info() finds it: 3.7+
     * PyThreadState.exc_info points at a stack of _PyErr_StackItem
     * (previous_item links, exc_value NULL or None where that level
     * handles nothing); 2.7/3.6 hold PyObject* exc_value in the thread
     * state itself. */
    int32_t tstate_exc_value;
    int32_t tstate_exc_info;
    int32_t stackitem_exc_value;
    int32_t stackitem_previous;

    /* Code objects' flag bits (co_flags, and 3.11+ co_localspluskinds
     * per slot; 0 = the version has no such kind). */
    uint32_t co_varargs, co_varkeywords;
    uint32_t co_fast_hidden, co_fast_cell, co_fast_free;
    /* Bytes one unit of f_lasti counts (<= 3.10): 1 while it counts
     * bytes (2.7-3.9), code_unit_size when it counts code units (3.10). */
    int32_t frame_lasti_unit;

    /* What analyze/objects/ reads beyond the walker's fields. */
    pyspy_builtins_kind builtins;
    pyspy_idict_kind idict;
    int32_t cell_ob_ref;          /* PyCellObject: PyObject* ob_ref */
    int32_t module_md_dict;       /* PyModuleObject: PyObject* md_dict */
    int32_t type_tp_basicsize;    /* PyTypeObject: Py_ssize_t */
    int32_t heaptype_cached_keys; /* PyHeapTypeObject: PyDictKeysObject* */
    /* Relative to the object, negative (managed dicts, 3.11+; 0 before):
     * the dict (or 3.12 dict-or-values) slot and 3.11's values slot. */
    int32_t managed_dict_off;
    int32_t managed_values_off;
    /* A split table's values: values[] inside the values object (0 while
     * ma_values is a plain PyObject** array, <= 3.12), and 3.13+'s uint8
     * capacity and valid fields (-1 before). */
    int32_t dictvalues_values;
    int32_t dictvalues_capacity;
    int32_t dictvalues_valid;
    /* Dict entries: {hash, key, value} (2.7 PyDictEntry, 3.x
     * PyDictKeyEntry), and 3.11+'s {key, value} PyDictUnicodeEntry used
     * while dk_kind is not general (-1 before 3.11). */
    int32_t dictentry_size, dictentry_key, dictentry_value;
    int32_t dictuentry_size, dictuentry_key, dictuentry_value;
    /* dk_kind values (3.11+; -1 before): general, unicode, split. */
    int32_t dictkeys_general, dictkeys_unicode, dictkeys_split;
    int32_t set_entry_key, set_entry_size; /* setentry */
    int32_t long_digit_bits;               /* PyLong_SHIFT */
    int32_t long_digit_size;               /* sizeof(digit) */
    /* 3.12+ lv_tag: sign in the low bits (mask; zero and negative
     * values, positive is 0), digit count above them (-1 before 3.12). */
    int32_t long_tag_sign_mask, long_tag_sign_zero, long_tag_sign_negative;
    int32_t long_tag_ndigits_shift;
    /* Type flags: heap type, and the fast-subclass bits the builtins
     * carry (0 where the version has no such bit: 2.7's int). */
    uint64_t tpflags_heaptype;
    uint64_t tpflags_int_subclass, tpflags_long_subclass;
    uint64_t tpflags_list_subclass, tpflags_tuple_subclass;
    uint64_t tpflags_bytes_subclass, tpflags_unicode_subclass;
    uint64_t tpflags_dict_subclass;
    uint64_t tpflags_managed_dict, tpflags_inline_values; /* 3.11+, 3.13+ */
    /* threading.Thread's attributes for its name and ident (2.7 mangles
     * its private names). */
    const char *thread_name_attr, *thread_ident_attr;
} pyspy_py_layout;

/* Built-in table for a version family (generated). NULL when unknown. */
const pyspy_py_layout *pyspy_py_layout_builtin(int major, int minor,
                                               bool free_threaded);

#endif
