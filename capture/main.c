/* pyspy-capture: placeholder until the capture flow lands. */
#include <pyspy.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    pyspy_capture_config cfg = pyspy_capture_config_default();
    pyspy_error err = {0};
    char *out = NULL;
    if (pyspy_capture_config_from_args(argc, argv, &cfg, &out, &err) != 0) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return err.code == PYSPY_E_USAGE ? 2 : 1;
    }
    if (out) {
        fputs(out, stdout);
        free(out);
        pyspy_capture_config_free(&cfg);
        return 0;
    }
    fprintf(stderr, "Error: live capture not implemented yet\n");
    pyspy_capture_config_free(&cfg);
    return 1;
}
