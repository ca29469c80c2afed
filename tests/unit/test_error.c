#include "testlib.h"
#include <pyspy.h>

TEST(error_set_and_prefix) {
    pyspy_error e = {0};
    CHECK(pyspy_error_set(&e, PYSPY_E_IO, "cannot open %s", "x.core") == -1);
    CHECK(e.code == PYSPY_E_IO);
    CHECK_STR(e.msg, "cannot open x.core");
    pyspy_error_prefix(&e, "snapshot %d", 3);
    CHECK_STR(e.msg, "snapshot 3: cannot open x.core");
    CHECK(e.code == PYSPY_E_IO);
    pyspy_error_clear(&e);
    CHECK(e.code == 0 && e.msg[0] == 0);
    CHECK(pyspy_error_set(NULL, 1, "x") == -1);
}

TEST_MAIN(T(error_set_and_prefix))
