/* Per-version CPython layouts: every offset the walker and the object
 * reader use. This is the only place version differences live: a table
 * per version (generated from that version's headers with offsetof, see
 * tools/gen-layouts) or, for 3.13+, filled from the target's
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
    /* 3.14+: f_executable and locals are _PyStackRef (low bits tag). */
    bool tagged_stackrefs;
    /* _PyInterpreterFrame.owner values of frames that are not Python
     * function frames and must be skipped (they also mark where one
     * _PyEval_EvalFrameDefault invocation began):
     *   owner_cstack: FRAME_OWNED_BY_CSTACK, the entry shim (3.12-3.14);
     *   owner_interpreter: FRAME_OWNED_BY_INTERPRETER (3.14: interpreter
     *   internal frames; 3.15, which dropped CSTACK: the entry shim).
     * -1 when the version has no such owner. 3.11 has neither and flags
     * entry frames with iframe_is_entry instead. */
    int owner_cstack;
    int owner_interpreter;

    /* _PyRuntimeState (3.7+) */
    int32_t runtime_interpreters_head;
    int32_t runtime_gil; /* offset of the _gil_runtime_state (3.7-3.11) */

    /* PyInterpreterState */
    int32_t interp_next;
    int32_t interp_tstate_head;
    int32_t interp_id;
    int32_t interp_modules; /* sys.modules dict */
    int32_t interp_sysdict;
    int32_t interp_gil_ptr; /* 3.12+: struct _gil_runtime_state * */

    /* struct _gil_runtime_state */
    int32_t gil_locked;      /* int / _Py_atomic_int */
    int32_t gil_last_holder; /* PyThreadState* (atomic address) */

    /* PyThreadState */
    int32_t tstate_next;
    int32_t tstate_interp;
    int32_t tstate_frame;  /* PYSPY_THREADS_FRAME / _CURRENT_FRAME */
    int32_t tstate_cframe; /* PYSPY_THREADS_CFRAME */
    int32_t tstate_thread_id;
    int32_t tstate_native_thread_id; /* kernel tid; -1 before 3.11 */
    int32_t cframe_current_frame;

    /* PyFrameObject (<= 3.10) */
    int32_t frame_back;
    int32_t frame_code;
    int32_t frame_lasti;
    int32_t frame_lineno;
    int32_t frame_localsplus;

    /* _PyInterpreterFrame (3.11+) */
    int32_t iframe_previous;
    int32_t iframe_code;      /* f_code / f_executable */
    int32_t iframe_instr_ptr; /* prev_instr / instr_ptr */
    int32_t iframe_localsplus;
    int32_t iframe_owner;
    int32_t iframe_stacktop; /* -1 where it is a pointer (3.14) */

    /* PyCodeObject */
    int32_t code_filename;
    int32_t code_name;
    int32_t code_qualname; /* -1 before 3.11 */
    int32_t code_firstlineno;
    int32_t code_linetable; /* co_lnotab / co_linetable (bytes) */
    int32_t code_argcount;
    int32_t code_posonlyargcount;
    int32_t code_kwonlyargcount;
    int32_t code_nlocals;
    int32_t code_flags;
    int32_t code_varnames;        /* <= 3.10 */
    int32_t code_cellvars;        /* <= 3.10 */
    int32_t code_freevars;        /* <= 3.10 */
    int32_t code_localsplusnames; /* 3.11+ */
    int32_t code_localspluskinds; /* 3.11+ (bytes) */
    int32_t code_code_adaptive;   /* 3.11+: first code unit */

    /* Objects */
    int32_t ob_type;
    int32_t var_ob_size;
    int32_t type_tp_name;
    int32_t type_tp_flags;
    int32_t type_tp_dictoffset;

    /* str (PEP 393) */
    int32_t unicode_length;
    int32_t unicode_state;
    int32_t unicode_ascii_data;    /* sizeof(PyASCIIObject) */
    int32_t unicode_compact_data;  /* sizeof(PyCompactUnicodeObject) */
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

    int32_t bytes_sval;
    int32_t tuple_item;
    int32_t list_item;
    int32_t float_fval;
    int32_t long_digits;  /* ob_digit */
    int32_t long_lv_tag;  /* 3.12+: lv_tag; -1 means sign in ob_size */
    int32_t py2_int_ival; /* 2.7 PyIntObject */

    /* dict */
    int32_t dict_ma_used;
    int32_t dict_ma_keys; /* 3.x; 2.7: ma_table */
    int32_t dict_ma_values;
    int32_t dict_py2_ma_mask;
    int32_t dictkeys_size; /* dk_size (3.6-3.10) or dk_log2_size (3.11+) */
    int32_t dictkeys_kind; /* 3.11+ dk_kind, -1 otherwise */
    int32_t dictkeys_nentries;
    int32_t dictkeys_indices; /* dk_indices */
    int32_t set_table;        /* PySetObject.table */
    int32_t set_mask;
    int32_t set_used;

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
} pyspy_py_layout;

/* Built-in table for a version family (generated). NULL when unknown. */
const pyspy_py_layout *pyspy_py_layout_builtin(int major, int minor,
                                               bool free_threaded);

#endif
