/* The one error type: a code and one human line. */
#include <pyspy.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int pyspy_error_set(pyspy_error *err, int code, const char *fmt, ...) {
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code ? code : PYSPY_E_GENERIC;
    return -1;
}

int pyspy_error_prefix(pyspy_error *err, const char *fmt, ...) {
    if (!err)
        return -1;
    char ctx[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    /* The precision keeps the result inside msg (truncating the old text),
     * which also tells the compiler no truncation warning is due. */
    int room = (int)(sizeof err->msg - 3 - strlen(ctx));
    snprintf(err->msg, sizeof err->msg, "%s: %.*s", ctx, room, old);
    if (!err->code)
        err->code = PYSPY_E_GENERIC;
    return -1;
}

void pyspy_error_clear(pyspy_error *err) {
    if (err) {
        err->code = 0;
        err->msg[0] = 0;
    }
}
